using Skiff.Agent.CodeServers;

namespace Skiff.Agent.Tests.CodeServers;

[Collection(AgentCollection.Name)]
public sealed class SocketFoldersTests(Releases releases)
{
    [Fact]
    public async Task A_starting_agent_removes_the_socket_folders_a_killed_agent_on_its_data_folder_left_and_no_others()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();
        var ours = SocketFolders.Prefix("cs", harness.CacheDirectory);
        // The live code server's socket folder carries the data folder's name.
        Directory.EnumerateDirectories(Path.GetTempPath(), ours + "*").ShouldNotBeEmpty();

        // What a kill -9 leaves: socket folders nobody deletes, with a socket file in them. And one of another agent.
        var leftCodeServer = Directory.CreateTempSubdirectory(ours).FullName;
        var leftStandby = Directory.CreateTempSubdirectory(SocketFolders.Prefix("sb", harness.CacheDirectory)).FullName;
        await File.WriteAllTextAsync(Path.Combine(leftCodeServer, "s"), "");
        var otherAgents = Directory.CreateTempSubdirectory(SocketFolders.Prefix("cs", harness.CacheDirectory + "-other")).FullName;
        try
        {
            await harness.RestartAsync(releases);

            Directory.Exists(leftCodeServer).ShouldBeFalse();
            Directory.Exists(leftStandby).ShouldBeFalse();
            Directory.Exists(otherAgents).ShouldBeTrue();
        }
        finally
        {
            Directory.Delete(otherAgents, recursive: true);
        }
    }
}
