using Skiff.Core;

namespace Skiff.Server.Hosting;

/// <summary>The server could not listen where it was told to: a port already taken, an address that is not one.</summary>
internal sealed class ListenFailedException(string message, Exception? innerException = null) : SkiffException(message, innerException);
