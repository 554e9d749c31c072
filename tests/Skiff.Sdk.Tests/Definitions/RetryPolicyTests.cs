namespace Skiff.Sdk.Tests.Definitions;

public sealed class RetryPolicyTests
{
    private static readonly Func<OpContext, Task> Nothing = _ => Task.CompletedTask;

    [Fact]
    public void None_IsOneAttemptWithoutDelay()
    {
        RetryPolicy.None.MaxAttempts.ShouldBe(1);
        RetryPolicy.None.InitialDelay.ShouldBe(TimeSpan.Zero);
    }

    [Fact]
    public void Defaults_DoubleUpToFiveMinutes()
    {
        var policy = new RetryPolicy(3, TimeSpan.FromSeconds(1));

        policy.BackoffMultiplier.ShouldBe(2);
        policy.MaxDelay.ShouldBe(TimeSpan.FromMinutes(5));
    }

    [Fact]
    public void DelayBefore_StartsAtInitialDelayAndMultipliesEachAttempt()
    {
        var policy = new RetryPolicy(5, TimeSpan.FromMilliseconds(100)) { BackoffMultiplier = 3 };

        policy.DelayBefore(2).ShouldBe(TimeSpan.FromMilliseconds(100));
        policy.DelayBefore(3).ShouldBe(TimeSpan.FromMilliseconds(300));
        policy.DelayBefore(4).ShouldBe(TimeSpan.FromMilliseconds(900));
    }

    [Fact]
    public void DelayBefore_IsCappedAtMaxDelay()
    {
        var policy = new RetryPolicy(10, TimeSpan.FromSeconds(1)) { MaxDelay = TimeSpan.FromSeconds(5) };

        policy.DelayBefore(2).ShouldBe(TimeSpan.FromSeconds(1));
        policy.DelayBefore(4).ShouldBe(TimeSpan.FromSeconds(4));
        policy.DelayBefore(5).ShouldBe(TimeSpan.FromSeconds(5));
        policy.DelayBefore(10).ShouldBe(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void DelayBefore_WithMultiplierOne_IsConstant()
    {
        var policy = new RetryPolicy(4, TimeSpan.FromMilliseconds(250)) { BackoffMultiplier = 1 };

        policy.DelayBefore(2).ShouldBe(TimeSpan.FromMilliseconds(250));
        policy.DelayBefore(4).ShouldBe(TimeSpan.FromMilliseconds(250));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Op_WithFewerThanOneAttempt_IsRejectedNamingTheOp(int attempts)
    {
        var job = new JobCatalog().Job("j");

        var message = Should.Throw<ArgumentException>(() => job.Op("load", Nothing, retry: new RetryPolicy(attempts, TimeSpan.Zero))).Message;

        message.ShouldContain("'load'");
        message.ShouldContain("MaxAttempts");
    }

    [Fact]
    public void Op_WithNegativeInitialDelay_IsRejected()
    {
        var job = new JobCatalog().Job("j");

        Should.Throw<ArgumentException>(() => job.Op("load", Nothing, retry: new RetryPolicy(2, TimeSpan.FromSeconds(-1))))
            .Message.ShouldContain("InitialDelay");
    }

    [Fact]
    public void Op_WithBackoffMultiplierBelowOne_IsRejected()
    {
        var job = new JobCatalog().Job("j");

        Should.Throw<ArgumentException>(() => job.Op("load", Nothing, retry: new RetryPolicy(2, TimeSpan.FromSeconds(1)) { BackoffMultiplier = 0.5 }))
            .Message.ShouldContain("BackoffMultiplier");
    }

    [Fact]
    public void Op_WithNaNBackoffMultiplier_IsRejected()
    {
        // NaN < 1 is false, so a plain comparison lets NaN through; DelayBefore then turns NaN into a
        // TimeSpan and throws inside the executor's retry path instead of failing at declaration.
        var job = new JobCatalog().Job("j");

        Should.Throw<ArgumentException>(() => job.Op("load", Nothing, retry: new RetryPolicy(2, TimeSpan.FromSeconds(1)) { BackoffMultiplier = double.NaN }));
    }

    [Fact]
    public void Op_WithNegativeMaxDelay_IsRejected()
    {
        // A negative MaxDelay makes every retry delay negative, which Task.Delay refuses at run time.
        var job = new JobCatalog().Job("j");

        Should.Throw<ArgumentException>(() => job.Op("load", Nothing, retry: new RetryPolicy(2, TimeSpan.FromSeconds(1)) { MaxDelay = TimeSpan.FromSeconds(-1) }));
    }
}
