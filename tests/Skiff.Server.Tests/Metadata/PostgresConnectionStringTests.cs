using Skiff.Server.Metadata;

namespace Skiff.Server.Tests.Metadata;

public sealed class PostgresConnectionStringTests
{
    [Fact]
    public void Url_GivesHostPortUserPasswordDatabaseAndSettings()
    {
        var builder = PostgresMetadataStore.ParseConnectionString("postgres://skiff:p%40ss@db.internal:6543/metadata?sslmode=require&Timeout=3");

        builder.Host.ShouldBe("db.internal");
        builder.Port.ShouldBe(6543);
        builder.Username.ShouldBe("skiff");
        builder.Password.ShouldBe("p@ss");
        builder.Database.ShouldBe("metadata");
        builder.SslMode.ShouldBe(Npgsql.SslMode.Require);
        builder.Timeout.ShouldBe(3);
    }

    [Fact]
    public void PostgresqlUrlWithoutPortOrPassword_KeepsNpgsqlsDefaults()
    {
        var builder = PostgresMetadataStore.ParseConnectionString("postgresql://skiff@127.0.0.1/skiff");

        builder.Port.ShouldBe(5432);
        builder.Password.ShouldBeNull();
        builder.Database.ShouldBe("skiff");
    }

    [Fact]
    public void NpgsqlConnectionString_IsTakenAsItIs()
    {
        var builder = PostgresMetadataStore.ParseConnectionString("Host=10.0.0.5;Port=5433;Username=skiff;Password=x;Database=meta");

        (builder.Host, builder.Port, builder.Username, builder.Database).ShouldBe(("10.0.0.5", 5433, "skiff", "meta"));
    }

    [Theory]
    [InlineData("skiff.db", "neither a postgres:// URL nor an Npgsql connection string")]
    [InlineData("mysql://root@localhost/skiff", "neither a postgres:// URL nor an Npgsql connection string")]
    [InlineData("Hots=db;Database=skiff", "not a valid Npgsql connection string")]
    [InlineData("Database=skiff", "names no host")]
    [InlineData("postgres://postgres@127.0.0.1:5432", "names no database")]
    [InlineData("Host=db;Username=skiff", "names no database")]
    [InlineData("postgres://skiff@db/skiff?colour=blue", "query setting 'colour'")]
    public void Others_AreRefusedSayingWhatToGive(string value, string why)
    {
        PostgresMetadataStore.TryParseConnectionString(value, out var problem).ShouldBeFalse();

        problem.ShouldNotBeNull();
        problem.ShouldContain(why);
        problem.ShouldContain("Give a URL such as postgres://");
    }

    [Fact]
    public void Refusal_DoesNotRepeatThePassword()
    {
        PostgresMetadataStore.TryParseConnectionString("Host=db;Pasword=hunter2", out var problem).ShouldBeFalse();

        problem.ShouldNotBeNull().ShouldNotContain("hunter2");
    }
}
