namespace Skiff.Server.Metadata;

/// <summary>
/// One event a run reported (a log line, progress, an op starting or ending), as the JSON the run
/// worker sent. <see cref="Seq"/> orders a run's events and makes resending one harmless.
/// </summary>
internal sealed record RunEventRecord(long Seq, string Json);
