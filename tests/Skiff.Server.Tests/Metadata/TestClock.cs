namespace Skiff.Server.Tests.Metadata;

/// <summary>A clock that stands still until a test moves it, so stored times can be asserted exactly.</summary>
internal sealed class TestClock : TimeProvider
{
    private readonly Lock _gate = new();
    private DateTimeOffset _now = Some.Time;

    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate)
        {
            return _now;
        }
    }

    public void Advance(TimeSpan by)
    {
        lock (_gate)
        {
            _now += by;
        }
    }
}
