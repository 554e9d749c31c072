namespace Skiff.Sdk.Definitions;

/// <summary>The parameter types a job can declare; what the protocol and the CLI call them.</summary>
internal enum ParameterType
{
    String,
    Integer,
    Number,
    Boolean,
}
