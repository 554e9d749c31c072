using System.Data;
using System.Globalization;
using System.Reflection;
using Amazon.S3;
using Bogus;
using CsvHelper;
using Dapper;
using DocumentFormat.OpenXml;
using DocumentFormat.OpenXml.Packaging;
using DocumentFormat.OpenXml.Spreadsheet;
using Humanizer;
using MathNet.Numerics;
using MathNet.Numerics.Statistics;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using NodaTime;
using Npgsql;
using Polly;
using Skiff.Sdk;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

return await SkiffApp.RunAsync(args, jobs =>
{
    // The cheapest job there is: with this project's ~80 packages, it shows what starting a run costs
    // when nothing but the source changed.
    jobs.Job("ping", "Logs one line")
        .Run(context =>
        {
            context.Logger.LogInformation("pong from {Job}", context.JobName);
            return Task.CompletedTask;
        });

    // A daily sales report, offline: fake orders stand in for the warehouse extract, statistics over
    // them, then the result goes to SQLite and an Excel sheet. Each op logs the packages it
    // used, so one can see they loaded from the environment (SQLite's is a native library).
    jobs.Job("report", "Builds a daily sales report from generated orders (CSV, statistics, SQLite, xlsx)")
        .Tags("sample", "heavy")
        .Parameter("rows", 1000, "how many orders to generate")
        .Parameter("day", "2025-06-30", "the report's business day (yyyy-MM-dd)")
        .Op("extract", context =>
        {
            var rows = context.Parameters.Get<int>("rows");
            var day = NodaTime.Text.LocalDatePattern.Iso.Parse(context.Parameters.Get<string>("day")).GetValueOrThrow();
            var csv = ExtractOrders(rows, day);
            context.Logger.LogInformation("extracted {Rows} orders for {Day} as {Size} of CSV (Bogus {Bogus}, CsvHelper {CsvHelper}, NodaTime {NodaTime})",
                rows, day, csv.Length.Bytes().Humanize("0.#"), VersionOf(typeof(Faker)), VersionOf(typeof(CsvWriter)), VersionOf(typeof(LocalDate)));
            context.RecordMetadata("rows", rows);
            return Task.FromResult(csv);
        })
        .Op("stats", context =>
        {
            var orders = ReadOrders(context.Input<string>("extract"));
            var amounts = orders.Select(order => (double)order.Amount).ToArray();
            var stats = new DescriptiveStatistics(amounts);
            // Does basket size explain the amount? A least-squares line through (quantity, amount).
            var (intercept, slope) = Fit.Line(orders.Select(order => (double)order.Quantity).ToArray(), amounts);
            var summary = new Summary(
                orders.Count,
                Math.Round(amounts.Sum(), 2),
                Math.Round(stats.Mean, 2),
                Math.Round(stats.StandardDeviation, 2),
                Math.Round(amounts.Median(), 2),
                Math.Round(amounts.Quantile(0.95), 2),
                Math.Round(slope, 3),
                Math.Round(intercept, 3),
                orders.GroupBy(order => order.Region)
                    .OrderBy(group => group.Key, StringComparer.Ordinal)
                    .ToDictionary(group => group.Key, group => Math.Round(group.Sum(order => (double)order.Amount), 2)));
            context.Logger.LogInformation("revenue {Revenue:N2} over {Orders} orders: mean {Mean}, sd {StdDev}, median {Median}, p95 {P95}, amount ≈ {Intercept} + {Slope}·quantity (MathNet.Numerics {MathNet})",
                summary.Revenue, summary.Orders, summary.Mean, summary.StdDev, summary.Median, summary.P95, summary.Intercept, summary.Slope, VersionOf(typeof(DescriptiveStatistics)));
            return Task.FromResult(summary);
        }, dependsOn: ["extract"])
        .Op("publish", async context =>
        {
            var summary = context.Input<Summary>("stats");
            var day = context.Parameters.Get<string>("day");
            var config = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build()
                .Deserialize<ReportConfig>(ReportConfig.Yaml);

            // SQLite in memory stands in for the warehouse table; Polly retries the write as a real job would.
            var pipeline = new ResiliencePipelineBuilder()
                .AddRetry(new() { MaxRetryAttempts = 3, Delay = TimeSpan.FromMilliseconds(50) })
                .Build();
            await using var connection = new SqliteConnection("Data Source=:memory:");
            await connection.OpenAsync(context.CancellationToken);
            await pipeline.ExecuteAsync(async token => await SaveAsync(connection, config.Table, day, summary), context.CancellationToken);
            var saved = await connection.QuerySingleAsync<(long Regions, double Revenue)>(
                $"select count(*), sum(revenue) from {config.Table} where day = @day", new { day });
            var sqlite = await connection.ExecuteScalarAsync<string>("select sqlite_version()");
            context.Logger.LogInformation("saved {Regions} regions totalling {Revenue:N2} to {Table} (sqlite {Sqlite} native e_sqlite3, Dapper {Dapper}, Polly {Polly}, YamlDotNet {Yaml})",
                saved.Regions, saved.Revenue, config.Table, sqlite, VersionOf(typeof(SqlMapper)), VersionOf(typeof(ResiliencePipeline)), VersionOf(typeof(DeserializerBuilder)));

            // The alert rule is a C# expression an analyst wrote in the config; Roslyn checks what it refers to.
            var rule = (ExpressionSyntax)CSharpSyntaxTree.ParseText(config.Alert, new CSharpParseOptions(kind: Microsoft.CodeAnalysis.SourceCodeKind.Script))
                .GetRoot().DescendantNodes().OfType<ExpressionSyntax>().First();
            var names = rule.DescendantNodesAndSelf().OfType<IdentifierNameSyntax>().Select(id => id.Identifier.Text).Distinct();
            context.Logger.LogInformation("alert rule {Rule} reads {Names} (Microsoft.CodeAnalysis.CSharp {Roslyn})",
                rule.ToString(), string.Join(", ", names), VersionOf(typeof(CSharpSyntaxTree)));

            var xlsx = WriteWorkbook(summary);
            context.Logger.LogInformation("wrote report.xlsx ({Xlsx}, DocumentFormat.OpenXml {OpenXml})",
                xlsx.Length.Bytes().Humanize("0.#"), VersionOf(typeof(SpreadsheetDocument)));
            context.RecordMetadata("revenue", summary.Revenue);
            context.RecordMetadata("xlsx_bytes", xlsx.Length);
        }, dependsOn: ["stats"])
        // Where the report would go on a real day; needs nothing, so it runs alongside the others. Nothing here
        // opens a connection: the op configures the clients and logs each package's version, which proves
        // the assemblies loaded.
        .Op("clients", context =>
        {
            var warehouse = new NpgsqlConnectionStringBuilder { Host = "warehouse.internal", Database = "sales", Username = "reporter" };
            var options = new DbContextOptionsBuilder().UseNpgsql(warehouse.ConnectionString).Options;
            var s3 = new AmazonS3Config { ServiceURL = "http://minio.internal:9000", ForcePathStyle = true };
            var cosmos = new Microsoft.Azure.Cosmos.CosmosClientOptions { ApplicationName = "skiff-heavy" };
            var credential = new Azure.Identity.DefaultAzureCredentialOptions { ExcludeInteractiveBrowserCredential = true };
            var rabbit = new RabbitMQ.Client.ConnectionFactory { HostName = "mq.internal" };
            var chrome = new OpenQA.Selenium.Chrome.ChromeOptions();
            chrome.AddArgument("--headless=new");
            var loaded = new (string Package, string Version)[]
            {
                ("Npgsql", VersionOf(typeof(NpgsqlConnection))),
                ("Microsoft.EntityFrameworkCore", VersionOf(typeof(DbContext))),
                ("Npgsql.EntityFrameworkCore.PostgreSQL", VersionOf(options.Extensions.First(e => e.GetType().Namespace!.StartsWith("Npgsql")).GetType())),
                ("AWSSDK.S3", VersionOf(typeof(AmazonS3Client))),
                ("AWSSDK.DynamoDBv2", VersionOf(typeof(Amazon.DynamoDBv2.AmazonDynamoDBClient))),
                ("Microsoft.Azure.Cosmos", VersionOf(typeof(Microsoft.Azure.Cosmos.CosmosClient))),
                ("Azure.Identity", VersionOf(typeof(Azure.Identity.DefaultAzureCredential))),
                ("Microsoft.Graph", VersionOf(typeof(Microsoft.Graph.GraphServiceClient))),
                ("RabbitMQ.Client", VersionOf(typeof(RabbitMQ.Client.ConnectionFactory))),
                ("Selenium.WebDriver", VersionOf(typeof(OpenQA.Selenium.Chrome.ChromeDriver))),
                ("Newtonsoft.Json", VersionOf(typeof(Newtonsoft.Json.JsonConvert))),
                ("Spectre.Console", VersionOf(typeof(Spectre.Console.Table))),
                ("System.CommandLine", VersionOf(typeof(System.CommandLine.RootCommand))),
                ("Humanizer", VersionOf(typeof(Humanizer.Bytes.ByteSize))),
            };
            context.Logger.LogInformation("targets: postgres {Warehouse} (EF Core provider ready: {Ef}), s3 {S3}, cosmos app {Cosmos}, azure credential chain {Azure}, rabbitmq {Rabbit}, chrome {Chrome}",
                warehouse.Host, options.Extensions.Any(), s3.ServiceURL, cosmos.ApplicationName,
                credential.ExcludeInteractiveBrowserCredential ? "non-interactive" : "interactive", rabbit.HostName, string.Join(" ", chrome.Arguments));
            context.Logger.LogInformation("loaded {Packages}", Newtonsoft.Json.JsonConvert.SerializeObject(loaded.ToDictionary(p => p.Package, p => p.Version)));
            context.RecordMetadata("packages_checked", loaded.Length);
            return Task.CompletedTask;
        });
});

static string ExtractOrders(int rows, LocalDate day)
{
    var regions = new[] { "APAC", "EMEA", "LATAM", "NA" };
    var faker = new Faker<Order>()
        .UseSeed(42)
        .RuleFor(order => order.Id, f => f.IndexFaker + 1)
        .RuleFor(order => order.Customer, f => f.Company.CompanyName())
        .RuleFor(order => order.Region, f => f.PickRandom(regions))
        .RuleFor(order => order.Quantity, f => f.Random.Int(1, 20))
        .RuleFor(order => order.Amount, (f, order) => Math.Round(order.Quantity * f.Random.Decimal(5, 80), 2))
        .RuleFor(order => order.PlacedAt, f => day.AtMidnight().PlusSeconds(f.Random.Int(0, 86_399)).ToString("uuuu-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture));
    using var writer = new StringWriter(CultureInfo.InvariantCulture);
    using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
    csv.WriteRecords(faker.Generate(rows));
    csv.Flush();
    return writer.ToString();
}

static List<Order> ReadOrders(string text)
{
    using var reader = new StringReader(text);
    using var csv = new CsvReader(reader, CultureInfo.InvariantCulture);
    return csv.GetRecords<Order>().ToList();
}

static async Task SaveAsync(IDbConnection connection, string table, string day, Summary summary)
{
    await connection.ExecuteAsync($"create table if not exists {table} (day text, region text, revenue real, primary key (day, region))");
    await connection.ExecuteAsync($"insert or replace into {table} (day, region, revenue) values (@day, @Region, @Revenue)",
        summary.ByRegion.Select(pair => new { day, Region = pair.Key, Revenue = pair.Value }));
}

static byte[] WriteWorkbook(Summary summary)
{
    using var stream = new MemoryStream();
    using (var document = SpreadsheetDocument.Create(stream, SpreadsheetDocumentType.Workbook))
    {
        var workbook = document.AddWorkbookPart();
        workbook.Workbook = new Workbook();
        var sheet = workbook.AddNewPart<WorksheetPart>();
        var data = new SheetData();
        data.Append(Row("region", "revenue"));
        foreach (var (region, revenue) in summary.ByRegion)
        {
            data.Append(Row(region, revenue));
        }
        data.Append(Row("total", summary.Revenue));
        sheet.Worksheet = new Worksheet(data);
        workbook.Workbook.AppendChild(new Sheets()).Append(
            new Sheet { Id = workbook.GetIdOfPart(sheet), SheetId = 1, Name = "Revenue" });
    }

    return stream.ToArray();

    static Row Row(string label, object value) => new(
        new Cell { DataType = CellValues.String, CellValue = new CellValue(label) },
        value is double number
            ? new Cell { DataType = CellValues.Number, CellValue = new CellValue(number.ToString(CultureInfo.InvariantCulture)) }
            : new Cell { DataType = CellValues.String, CellValue = new CellValue(value.ToString() ?? "") });
}

// The package version a type's assembly was built as, to show which one the environment supplied.
static string VersionOf(Type type)
{
    var assembly = type.Assembly;
    var informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+', ' ')[0];
    // The AWS SDK stamps every assembly's informational version 1.0.0; its file version is the package's.
    return informational is null or "1.0.0"
        ? assembly.GetCustomAttribute<AssemblyFileVersionAttribute>()?.Version ?? assembly.GetName().Version?.ToString() ?? "?"
        : informational;
}

public sealed class Order
{
    public int Id { get; set; }
    public string Customer { get; set; } = "";
    public string Region { get; set; } = "";
    public int Quantity { get; set; }
    public decimal Amount { get; set; }
    public string PlacedAt { get; set; } = "";
}

public sealed record Summary(
    int Orders,
    double Revenue,
    double Mean,
    double StdDev,
    double Median,
    double P95,
    double Slope,
    double Intercept,
    Dictionary<string, double> ByRegion);

public sealed class ReportConfig
{
    // What a team would keep next to the job in report.yaml; inline so the sample stays one file.
    public const string Yaml = """
        table: daily_revenue
        alert: revenue < 0.8 * trailing_mean && orders > 100
        """;

    public string Table { get; set; } = "";
    public string Alert { get; set; } = "";
}
