using System.Text;
using Skiff.Sdk.Protocol;

namespace Skiff.Sdk.Tests.Protocol;

public sealed class ProcessNameTests
{
    [Fact]
    public void Set_from_a_thread_other_than_the_main_one_names_the_process_as_ps_shows_it()
    {
        // The process's name is its thread-group leader's; a code server's Main may run on any thread (a standby's does
        // on a pool thread), and a name given to that thread alone would not be what ps -e, top and pgrep show.
        var comm = $"/proc/{Environment.ProcessId}/comm";
        var before = File.ReadAllText(comm).TrimEnd('\n');
        int? thread = null;
        try
        {
            var other = new Thread(() =>
            {
                thread = int.Parse(Path.GetFileName(new DirectoryInfo("/proc/thread-self").LinkTarget!), System.Globalization.CultureInfo.InvariantCulture);
                ProcessName.Set("runs:analytics-nightly");
            });
            other.Start();
            other.Join();

            thread.ShouldNotBe(Environment.ProcessId, "the name was set from a thread that is not the leader");
            File.ReadAllText(comm).ShouldBe("runs:analytics-\n", "cut to the kernel's 15 bytes");
        }
        finally
        {
            File.WriteAllText(comm, before);
        }
    }

    [Theory]
    [InlineData("cs:short", "cs:short")]
    [InlineData("cs:exactly-15ab", "cs:exactly-15ab")]
    [InlineData("runs:analytics-nightly", "runs:analytics-")]
    [InlineData("cs:abéééééé", "cs:abééééé")]
    [InlineData("cs:aéééééé", "cs:aééééé")]
    public void Truncate_keeps_at_most_15_bytes_and_never_cuts_a_character(string name, string expected)
    {
        var bytes = ProcessName.Truncate(name);

        bytes.Length.ShouldBeLessThanOrEqualTo(ProcessName.MaxBytes);
        Encoding.UTF8.GetString(bytes).ShouldBe(expected);
    }
}
