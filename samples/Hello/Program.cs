using Humanizer;
using Microsoft.Data.Sqlite;
using Newtonsoft.Json;

// Each line proves one dependency loaded from wherever the host found it: managed code from three
// packages and SQLite's native library.
var greeting = args.Length > 0 ? string.Join(' ', args) : "world";
Console.WriteLine($"Hello, {greeting}!");

using var connection = new SqliteConnection("Data Source=:memory:");
connection.Open();
using var command = connection.CreateCommand();
command.CommandText = "select sqlite_version()";
Console.WriteLine($"sqlite: {command.ExecuteScalar()} (native e_sqlite3)");

var json = JsonConvert.SerializeObject(new { greeting, packages = 3 });
Console.WriteLine($"json: {json} (Newtonsoft.Json {typeof(JsonConvert).Assembly.GetName().Version})");

Console.WriteLine($"humanizer: {"skiff_deploys_fast".Humanize()} (Humanizer {typeof(StringHumanizeExtensions).Assembly.GetName().Version})");
