namespace Skiff.Server.Metadata;

/// <summary>
/// Rides out a metadata store that cannot be reached for a while (PostgreSQL restarting takes a second or two, a
/// managed failover tens of seconds) for work that must not be dropped half done: an agent's run events, a
/// deployment already recorded pending, a follower's stream. Requests a client can simply repeat do not wait;
/// they fail at once with the store's message (HTTP 503).
/// </summary>
internal static class MetadataOutage
{
    private static readonly TimeSpan FirstWait = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LongestWait = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Runs <paramref name="work"/>, and again (after 0.1 s, doubling to 1 s) each time it finds the store
    /// unreachable, for up to <paramref name="patience"/>; then the store's error is thrown. Only for work that is
    /// safe to repeat: the store's writes are conditional or idempotent, and one whose connection broke while
    /// committing may have been recorded (so a retry that finds it done must count as done).
    /// </summary>
    public static async Task<T> RideOutAsync<T>(Func<Task<T>> work, TimeProvider time, TimeSpan patience, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var wait = FirstWait;
        while (true)
        {
            try
            {
                return await work().ConfigureAwait(false);
            }
            catch (MetadataStoreException exception) when (exception.IsUnreachable && time.GetElapsedTime(started) + wait < patience && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
                wait = wait * 2 < LongestWait ? wait * 2 : LongestWait;
            }
        }
    }

    /// <inheritdoc cref="RideOutAsync{T}(Func{Task{T}}, TimeProvider, TimeSpan, CancellationToken)"/>
    public static Task RideOutAsync(Func<Task> work, TimeProvider time, TimeSpan patience, CancellationToken cancellationToken) =>
        RideOutAsync(
            async () =>
            {
                await work().ConfigureAwait(false);
                return true;
            },
            time,
            patience,
            cancellationToken);
}
