using Skiff.Server.Api;
using Skiff.Server.Variables;

namespace Skiff.Server.Tests.Variables;

public sealed class VariableNamesTests
{
    [Theory]
    [InlineData("DB_URL")]
    [InlineData("_private")]
    [InlineData("a1")]
    [InlineData("DOTNET_ENVIRONMENT")]
    [InlineData("ASPNETCORE_ENVIRONMENT")]
    public void Names_a_process_can_take_are_accepted(string name) => Should.NotThrow(() => VariableNames.Validate(name));

    [Theory]
    [InlineData("", "is not an environment variable name")]
    [InlineData("1ABC", "is not an environment variable name")]
    [InlineData("A-B", "is not an environment variable name")]
    [InlineData("A=B", "is not an environment variable name")]
    [InlineData("ÜBER", "is not an environment variable name")]
    [InlineData("SKIFF_LOCATION", "reserved")]
    [InlineData("skiff_anything", "reserved")]
    [InlineData("DOTNET_GCHeapHardLimit", "reserved")]
    [InlineData("COREHOST_TRACE", "reserved")]
    [InlineData("LD_PRELOAD", "reserved")]
    [InlineData("CORECLR_PROFILER_PATH", "reserved")]
    [InlineData("COMPlus_EnableDiagnostics", "reserved")]
    [InlineData("complus_gcServer", "reserved")]
    [InlineData("GCONV_PATH", "reserved")]
    [InlineData("LOCPATH", "reserved")]
    [InlineData("GLIBC_TUNABLES", "reserved")]
    [InlineData("PATH", "reserved")]
    [InlineData("HOME", "reserved")]
    public void Names_that_are_malformed_or_reserved_are_refused_saying_which(string name, string expected) =>
        Should.Throw<BadRequestException>(() => VariableNames.Validate(name)).Message.ShouldContain(expected);

    [Fact]
    public void Values_with_a_NUL_or_over_the_limit_are_refused_and_the_limit_itself_is_accepted()
    {
        Should.Throw<BadRequestException>(() => VariableNames.ValidateValue("X", "a\0b")).Message.ShouldContain("NUL");
        Should.Throw<BadRequestException>(() => VariableNames.ValidateValue("X", new string('x', VariableNames.MaxValueBytes + 1))).Message.ShouldContain("32 KiB");
        Should.Throw<BadRequestException>(() => VariableNames.ValidateValue("X", null)).Message.ShouldContain("has no value");
        Should.NotThrow(() => VariableNames.ValidateValue("X", new string('x', VariableNames.MaxValueBytes)));
        Should.NotThrow(() => VariableNames.ValidateValue("X", ""));
    }

    [Fact]
    public void A_change_naming_one_variable_twice_or_nothing_is_refused()
    {
        Should.Throw<BadRequestException>(() => LocationVariables.Check(new VariableChange("app", [new VariableSetting("A", "1", false)], ["A"], "ana"))).Message.ShouldContain("more than once");
        Should.Throw<BadRequestException>(() => LocationVariables.Check(new VariableChange("app", [], [], "ana"))).Message.ShouldContain("nothing");
    }

    [Fact]
    public void A_setting_prints_a_secret_by_name_only() =>
        new VariableSetting("API_KEY", "hunter2", Secret: true).ToString().ShouldNotContain("hunter2");
}
