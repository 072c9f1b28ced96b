// Reading one key's TOML value as its schema entry says: the type, the range, the allowed
// values, the address syntax (and resolution). Every problem goes to `report` at the value's
// position, with the loader's messages ("'workers' must be an integer from 0 to 256").
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <toml++/toml.h>
#include <type_traits>
#include <variant>
#include <vector>

#include "config/schema.hpp"

namespace xs::config {

using Report = std::function<void(const toml::source_region&, std::string)>;

// A checked value: the alternative follows the key's type (long long: Integer, int: the Enum's
// value, std::string: String, HostPort, Path and addresses).
struct Value {
    std::variant<bool, long long, int, double, Millis, std::string, std::vector<std::string>> v;
    SocketAddress address;  // addresses with info.resolve
};

std::optional<Value> read_value(const toml::node& n, const schema::KeyInfo& key, const Report& report);

// "HOST:PORT" -> a socket address (getaddrinfo; passive for a listen address). Problems go to
// `report` at `n`.
bool resolve(const toml::node& n, const std::string& text, bool listen, SocketAddress& out,
             const Report& report);

// Writes a checked value into the key's field (the schema's helpers pair types and fields).
template <class S>
void store(const schema::Key<S>& key, Value&& value, S& out) {
    std::visit(
        [&](auto&& f) {
            using F = std::decay_t<decltype(f)>;
            if constexpr (std::is_same_v<F, schema::EnumAccess<S>>) {
                f.set(out, std::get<int>(value.v));
            } else {
                using T = typename schema::MemberOf<F>::Value;
                if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, double> ||
                              std::is_same_v<T, Millis> || std::is_same_v<T, std::string> ||
                              std::is_same_v<T, std::vector<std::string>>)
                    out.*f = std::move(std::get<T>(value.v));
                else
                    out.*f = static_cast<T>(std::get<long long>(value.v));
            }
        },
        key.field);
    if (key.resolved) key.resolved(out, value.address);
}

}  // namespace xs::config
