namespace Skiff.Sdk;

/// <summary>
/// The parameters given to a run do not fit the job: one is missing, unknown, or of the wrong type.
/// Raised before the run starts; the message names the parameter.
/// </summary>
public sealed class ParameterException : Exception
{
    internal ParameterException(string message)
        : base(message)
    {
    }
}
