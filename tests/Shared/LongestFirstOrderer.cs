using Xunit.Abstractions;

namespace Skiff.Testing;

/// <summary>
/// Starts a test project's longest collections first, so its parallel slots end together instead of one long class
/// starting late and running on alone (xUnit's own order is by an id, not by length). A project names its long
/// collections, longest first, in a subclass that <c>[assembly: TestCollectionOrderer]</c> points at; collections it
/// does not name are shorter and follow in name order.
/// </summary>
internal abstract class LongestFirstOrderer(params string[] longest) : ITestCollectionOrderer
{
    private const string PerClass = "Test collection for ";

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections
            .OrderBy(collection => Array.IndexOf(longest, Name(collection)) is var rank and >= 0 ? rank : longest.Length)
            .ThenBy(Name, StringComparer.Ordinal);

    // A class without [Collection] is a collection of its own, shown as "Test collection for <class>".
    private static string Name(ITestCollection collection) =>
        collection.DisplayName.StartsWith(PerClass, StringComparison.Ordinal) ? collection.DisplayName[PerClass.Length..] : collection.DisplayName;
}
