// Domain names as routing sees them: normalised, validated, matched against patterns.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace xs::routing {

// Lower-cases ASCII letters, removes one trailing dot, and checks the result: 1..253 bytes,
// labels of 1..63 bytes, ASCII letters, digits, '-' and '_', or valid UTF-8 above 0x7F
// (internationalised labels); no empty label, no leading or trailing '-' in a label.
// Returns nullopt (and the reason in *why when given) if the name is not a valid domain.
std::optional<std::string> normalize_domain(std::string_view raw, std::string* why = nullptr);

// Route patterns: an exact domain, "*.suffix" (matches any name with at least one more label
// than suffix: "*.example.com" matches a.example.com and a.b.example.com, not example.com),
// or "*" (matches everything). Patterns are normalised like domains.
enum class PatternKind { Exact, Wildcard, Any };
struct DomainPattern {
    PatternKind kind = PatternKind::Exact;
    std::string text;  // Exact: the domain; Wildcard: the suffix without "*."; Any: empty
};
std::optional<DomainPattern> parse_pattern(std::string_view raw, std::string* why = nullptr);

// True if the normalised domain matches the pattern.
bool matches(const DomainPattern& p, std::string_view domain);

}  // namespace xs::routing
