using Skiff.Core;

namespace Skiff.Cli.Export.Registry;

/// <summary>A push to a registry failed: it could not be reached, refused the login or the upload, or answered wrongly.</summary>
internal sealed class RegistryException(string message, Exception? innerException = null) : SkiffException(message, innerException);
