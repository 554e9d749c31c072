namespace Skiff.Testing;

/// <summary>
/// The small project the variant tests restore and build (docs/build.md, "Variants"), written from text: base has
/// Newtonsoft.Json; ml has Humanizer.Core as well and its own Newtonsoft.Json reference; dev has nothing more. Every
/// variant has an analyzer and a test library marked PrivateAssets="all", which no variant may ship.
/// </summary>
internal static class VariantProject
{
    /// <summary>
    /// Writes the project as <c>NAME/NAME.csproj</c> into the workspace and returns its folder; <paramref name="mlNewtonsoft"/>
    /// is ml's Newtonsoft.Json version: 13.0.3 agrees with base and dev, another one conflicts.
    /// </summary>
    public static string Write(Workspace workspace, string name, string mlNewtonsoft) =>
        workspace.WriteProject(name, $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <RestorePackagesWithLockFile>true</RestorePackagesWithLockFile>
                <SkiffVariants>base;ml;dev</SkiffVariants>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="xunit.analyzers" Version="1.18.0" PrivateAssets="all" />
                <PackageReference Include="xunit.assert" Version="2.9.3" PrivateAssets="all" />
              </ItemGroup>
              <ItemGroup Condition="'$(SkiffVariant)' != 'ml'">
                <PackageReference Include="Newtonsoft.Json" Version="13.0.3" />
              </ItemGroup>
              <ItemGroup Condition="'$(SkiffVariant)' == 'ml'">
                <PackageReference Include="Newtonsoft.Json" Version="{mlNewtonsoft}" />
                <PackageReference Include="Humanizer.Core" Version="2.14.1" />
              </ItemGroup>
            </Project>
            """, "System.Console.WriteLine(Newtonsoft.Json.JsonConvert.SerializeObject(1));");
}
