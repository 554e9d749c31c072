using Skiff.Core;

namespace Skiff.Build.Restore;

/// <summary>
/// A project's lock file and what its restore would resolve disagree, or a locked build was asked of a
/// project without a lock file. Nothing was put into the store.
/// </summary>
internal sealed class LockFileException(string message) : SkiffException(message);
