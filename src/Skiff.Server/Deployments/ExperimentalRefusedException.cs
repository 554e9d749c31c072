using Skiff.Core;

namespace Skiff.Server.Deployments;

/// <summary>
/// A release with experimental packages was deployed to a location that refuses them (`skiff locations set L --no-exp`);
/// nothing was registered or changed.
/// </summary>
internal sealed class ExperimentalRefusedException(string message) : SkiffException(message);
