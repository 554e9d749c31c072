using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Skiff.Client.Api;

/// <summary>
/// How the API's messages travel: snake_case names, nulls written (a field that is null says so). The server
/// serializes with these settings and the client reads with them.
/// </summary>
// A key given twice is refused rather than the last one winning: {"location":"a","location":"b"} is a mistake or an
// attempt to slip past a check that read the first (found by the attack pass).
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, AllowDuplicateProperties = false)]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(ServerStatus))]
[JsonSerializable(typeof(MissingBlobsRequest))]
[JsonSerializable(typeof(MissingBlobs))]
[JsonSerializable(typeof(BlobCommitRequest))]
[JsonSerializable(typeof(StoredBlob))]
[JsonSerializable(typeof(ScrubReport))]
[JsonSerializable(typeof(DeploymentRequest))]
[JsonSerializable(typeof(Deployment))]
[JsonSerializable(typeof(IReadOnlyList<Deployment>))]
[JsonSerializable(typeof(RollbackRequest))]
[JsonSerializable(typeof(GarbageCollection))]
[JsonSerializable(typeof(IReadOnlyList<LocationSummary>))]
[JsonSerializable(typeof(LocationSettingsRequest))]
[JsonSerializable(typeof(LocationSettings))]
[JsonSerializable(typeof(LocationJobs))]
[JsonSerializable(typeof(IReadOnlyList<HealthReport>))]
[JsonSerializable(typeof(RunRequest))]
[JsonSerializable(typeof(StartedRun))]
[JsonSerializable(typeof(Run))]
[JsonSerializable(typeof(IReadOnlyList<Run>))]
[JsonSerializable(typeof(CanceledRun))]
[JsonSerializable(typeof(TokenRequest))]
[JsonSerializable(typeof(CreatedToken))]
[JsonSerializable(typeof(IReadOnlyList<TokenSummary>))]
[JsonSerializable(typeof(RevokedToken))]
[JsonSerializable(typeof(IReadOnlyList<AuditEntry>))]
[JsonSerializable(typeof(AccessGrant))]
[JsonSerializable(typeof(WebhookRequest))]
[JsonSerializable(typeof(CreatedWebhook))]
[JsonSerializable(typeof(IReadOnlyList<WebhookSummary>))]
[JsonSerializable(typeof(RemovedWebhook))]
[JsonSerializable(typeof(IReadOnlyList<WebhookDeliverySummary>))]
[JsonSerializable(typeof(IReadOnlyList<ScheduleSummary>))]
[JsonSerializable(typeof(ScheduleChange))]
[JsonSerializable(typeof(EnvChangeRequest))]
[JsonSerializable(typeof(LocationEnv))]
[JsonSerializable(typeof(EnvChange))]
[JsonSerializable(typeof(JsonObject))]
[JsonSerializable(typeof(JsonArray))]
internal sealed partial class ApiJson : JsonSerializerContext;
