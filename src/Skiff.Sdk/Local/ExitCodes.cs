namespace Skiff.Sdk.Local;

/// <summary>Exit codes of a Skiff program run by hand, the same as <c>skiff run</c> uses.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failed = 1;
    public const int Usage = 2;
    public const int Canceled = 130;
}
