namespace Skiff.Core.Manifests;

/// <summary>A manifest could not be read: it is not the JSON Skiff writes for that kind of manifest.</summary>
internal sealed class InvalidManifestException(string what, string problem, Exception? innerException = null)
    : SkiffException($"{what} is not a valid manifest: {problem}. It was not written by this version of Skiff; rebuild the release with `skiff build`.", innerException);
