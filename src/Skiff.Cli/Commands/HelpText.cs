using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Globalization;

namespace Skiff.Cli.Commands;

/// <summary>
/// Help and usage errors the way a person reads them. System.CommandLine 2.0 keeps its help builder internal, and
/// its help lists a command's optional arguments without brackets and repeats an argument's default after the
/// command's description; this writes the same sections with optional arguments in brackets everywhere, each
/// default said once and "required" said once. A usage error is one line and exit 2, not the whole page and exit 1.
/// </summary>
internal static class HelpText
{
    public static void Apply(RootCommand root)
    {
        if (root.Options.OfType<HelpOption>().FirstOrDefault() is { } option)
        {
            option.Action = new Action();
        }
    }

    public static bool HasUsageErrors(ParseResult parse) => parse.Action is ParseErrorAction;

    /// <summary>Prints a parse result's errors as <c>error: …</c> lines and where to read more; the exit code of a usage error.</summary>
    public static int ReportUsageErrors(ParseResult parse)
    {
        if (parse.Tokens.Count == 0)
        {
            // `skiff` alone: the page a newcomer is looking for, not "Required command was not provided".
            Console.Error.Write(Write(parse.CommandResult.Command));
            return CommandRunner.Usage;
        }

        // A mistyped command ("skiff delpoy") also leaves "Required command was not provided"; the typo is the news.
        var errors = parse.UnmatchedTokens.Count > 0
            ? parse.Errors.Where(e => parse.UnmatchedTokens.Any(t => e.Message.Contains(t, StringComparison.Ordinal))).ToList()
            : [.. parse.Errors];
        foreach (var error in errors.Count > 0 ? errors : [.. parse.Errors])
        {
            Console.Error.WriteLine($"error: {error.Message}");
        }

        Console.Error.WriteLine($"see `{Path(parse.CommandResult.Command)} --help`");
        return CommandRunner.Usage;
    }

    /// <summary>The help page of <paramref name="command"/>.</summary>
    public static string Write(Command command)
    {
        var text = new StringWriter(CultureInfo.InvariantCulture);
        if (command.Description is { Length: > 0 } description)
        {
            text.WriteLine("Description:");
            text.WriteLine($"  {description}");
            text.WriteLine();
        }

        text.WriteLine("Usage:");
        var visibleOptions = Options(command).ToList();
        text.WriteLine($"  {string.Join(' ', [Path(command), .. command.Arguments.Where(a => !a.Hidden).Select(Label), .. command.Subcommands.Count > 0 ? ["[command]"] : Array.Empty<string>(), "[options]"])}");
        Section(text, "Arguments:", [.. command.Arguments.Where(a => !a.Hidden).Select(a => ($"<{a.HelpName ?? a.Name}>", Describe(a.Description, a.HasDefaultValue ? a.GetDefaultValue() : null)))]);
        Section(text, "Options:", [.. visibleOptions.Select(o => (OptionLabel(o), Describe(o.Description, o.HasDefaultValue && !Flag(o) ? o.GetDefaultValue() : null)))]);
        Section(text, "Commands:", [.. command.Subcommands.Where(c => !c.Hidden).Select(c => (Label(c), c.Description ?? ""))]);
        return text.ToString();
    }

    /// <summary>"deploy [&lt;path&gt;]", "exec &lt;release&gt; [&lt;args&gt;...]": optional arguments in brackets.</summary>
    internal static string Label(Command command) =>
        string.Join(' ', [command.Name, .. command.Arguments.Where(a => !a.Hidden).Select(Label)]);

    private static string Label(Argument argument)
    {
        var name = $"<{argument.HelpName ?? argument.Name}>{(argument.Arity.MaximumNumberOfValues > 1 ? "..." : "")}";
        return argument.Arity.MinimumNumberOfValues == 0 ? $"[{name}]" : name;
    }

    private static string OptionLabel(Option option)
    {
        // The DOS-style aliases of help (/?, /h) are noise on the systems Skiff runs on.
        var names = string.Join(", ", option.Aliases.Where(a => !a.StartsWith('/')).Order(StringComparer.Ordinal).Append(option.Name));
        var value = Flag(option) ? "" : $" <{option.HelpName ?? option.Name.TrimStart('-')}>";
        return $"{names}{value}{(option.Required ? " (required)" : "")}";
    }

    private static bool Flag(Option option) => option.ValueType == typeof(bool) || option.Arity.MaximumNumberOfValues == 0;

    private static string Describe(string? description, object? defaultValue) =>
        defaultValue is null || defaultValue is string { Length: 0 }
            ? description ?? ""
            : $"{description} [default: {Convert.ToString(defaultValue, CultureInfo.InvariantCulture)}]".TrimStart();

    /// <summary>The command's own options and the recursive ones of its ancestors (help), in declaration order.</summary>
    private static IEnumerable<Option> Options(Command command)
    {
        var own = command.Options.Where(o => !o.Hidden);
        var inherited = command.Parents.OfType<Command>().SelectMany(Options).Where(o => o.Recursive);
        return own.Concat(inherited).Distinct();
    }

    private static void Section(TextWriter text, string title, IReadOnlyList<(string Left, string Right)> rows)
    {
        if (rows.Count == 0)
        {
            return;
        }

        text.WriteLine();
        text.WriteLine(title);
        var width = rows.Max(r => r.Left.Length);
        foreach (var (left, right) in rows)
        {
            text.WriteLine($"  {left.PadRight(width)}  {right}".TrimEnd());
        }
    }

    private static string Path(Command command) =>
        command is RootCommand ? "skiff" : $"{Path(command.Parents.OfType<Command>().First())} {command.Name}";

    private sealed class Action : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            Console.Out.Write(Write(parseResult.CommandResult.Command));
            return 0;
        }
    }
}
