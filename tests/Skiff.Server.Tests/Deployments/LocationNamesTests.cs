using Skiff.Server.Deployments;

namespace Skiff.Server.Tests.Deployments;

public sealed class LocationNamesTests
{
    [Theory]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("...")]
    [InlineData(".hidden")]
    [InlineData("-x")]
    [InlineData("Analytics")]
    [InlineData("a/b")]
    [InlineData("")]
    public void A_name_that_is_not_safe_in_a_path_or_url_is_refused_saying_what_a_name_is(string name)
    {
        Should.Throw<InvalidLocationNameException>(() => LocationNames.Validate(name))
            .Message.ShouldBe($"'{name}' is not a location name: use 1 to 100 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit.");
    }

    [Theory]
    [InlineData("analytics")]
    [InlineData("etl.v2")]
    [InlineData("9-lives_")]
    public void A_name_of_lowercase_letters_digits_and_marks_that_starts_with_a_letter_or_digit_is_taken(string name)
    {
        Should.NotThrow(() => LocationNames.Validate(name));
    }
}
