// The configuration reference, rendered from the schema (schema.hpp): what
// `xmpp-shard-proxy --print-config-reference` prints and docs/CONFIG.md holds between its
// config-reference markers.
#pragma once
#include <string>
#include <vector>

namespace xs::config {

struct KeyDoc {
    std::string name, type, default_value, range, help;
};

struct SectionDoc {
    std::string title;  // "[proxy]", "[[listener]]"
    std::string help;
    std::vector<KeyDoc> keys;
};

// Every section, in the schema's order.
std::vector<SectionDoc> reference_sections();

// Markdown: a table of the value types, then one table per section (key, type, default,
// range, description). Ends with a newline.
std::string render_reference_markdown();

}  // namespace xs::config
