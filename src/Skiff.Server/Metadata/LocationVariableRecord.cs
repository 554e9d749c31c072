namespace Skiff.Server.Metadata;

/// <summary>One environment variable of a location (docs/env.md).</summary>
/// <param name="Location">The location whose code servers and runs get it.</param>
/// <param name="Name">The variable's name, checked by the caller (<see cref="Skiff.Server.Variables.VariableNames"/>).</param>
/// <param name="Value">Its value as given, or for a secret the sealed form (<see cref="Skiff.Server.Variables.SecretBox"/>): the
/// store never sees a secret in plain text.</param>
/// <param name="Secret">Whether it is a secret: sealed at rest, never answered by the API.</param>
/// <param name="SetAt">When it was last set.</param>
/// <param name="SetBy">Who set it, as the server knows them (the token's name).</param>
internal sealed record LocationVariableRecord(string Location, string Name, string Value, bool Secret, DateTimeOffset SetAt, string SetBy);
