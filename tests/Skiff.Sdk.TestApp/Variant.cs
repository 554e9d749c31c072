/// <summary>
/// Which version of the test app this is. Agent tests overwrite this file in a copy of the project to
/// build releases that differ only in source, or that fail to start in a chosen way:
/// "throws" (Main throws), "hangs" (Main never hands over), "bad_definitions" (declaring jobs throws),
/// "crash_loop" (serving, exits once the file SKIFF_TESTAPP_CRASH_WHEN names exists).
/// </summary>
internal static class Variant
{
    public static readonly string Name = "dev";
}
