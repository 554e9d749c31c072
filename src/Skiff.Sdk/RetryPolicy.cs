namespace Skiff.Sdk;

/// <summary>
/// How often an op (or a task) is tried and how long to wait between tries. The wait doubles (by default) after
/// each failed attempt, up to <see cref="MaxDelay"/>. Cancellation is never retried.
/// </summary>
/// <param name="MaxAttempts">Total attempts including the first; 1 means no retry. At least 1.</param>
/// <param name="InitialDelay">The wait before the second attempt.</param>
public sealed record RetryPolicy(int MaxAttempts, TimeSpan InitialDelay)
{
    /// <summary>One attempt, no retry: the default for every op.</summary>
    public static RetryPolicy None { get; } = new(1, TimeSpan.Zero);

    /// <summary>What each wait is multiplied by after a failed attempt. Default 2.</summary>
    public double BackoffMultiplier { get; init; } = 2;

    /// <summary>The longest wait between attempts. Default 5 minutes.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMinutes(5);

    internal TimeSpan DelayBefore(int attempt)
    {
        // attempt 2 waits InitialDelay, attempt 3 InitialDelay * multiplier, ...
        var delay = InitialDelay.TotalMilliseconds * Math.Pow(BackoffMultiplier, attempt - 2);
        return TimeSpan.FromMilliseconds(Math.Min(delay, MaxDelay.TotalMilliseconds));
    }

    /// <param name="owner">What the policy is for, as messages name it: <c>op 'load'</c>, <c>task 'reconstruct'</c>.</param>
    internal void Validate(string owner)
    {
        if (MaxAttempts < 1)
        {
            throw new ArgumentException($"{owner}: MaxAttempts must be at least 1, not {MaxAttempts}.");
        }

        // Written as !(x >= 1) so that NaN is refused too.
        if (InitialDelay < TimeSpan.Zero || MaxDelay < TimeSpan.Zero || !(BackoffMultiplier >= 1) || double.IsInfinity(BackoffMultiplier))
        {
            throw new ArgumentException($"{owner}: InitialDelay and MaxDelay must not be negative, and BackoffMultiplier must be a finite number of at least 1.");
        }
    }
}
