using Skiff.Core;

namespace Skiff.Server.Deployments;

/// <summary>A deployment named a release whose blobs are not all on the server.</summary>
internal sealed class ReleaseIncompleteException(string message) : SkiffException(message);
