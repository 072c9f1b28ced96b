// Rendezvous (highest-random-weight) hashing. Scores depend only on the key and the backend's
// name, never on its position or on the other backends, so removing one backend of K moves only
// the keys that ranked it first. The hash is fixed (not std::hash) so that rankings are the same
// across builds, machines and restarts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xs::routing {

uint64_t rendezvous_score(std::string_view key, std::string_view backend_name);

// Returns the indices of `names` ordered by descending score for `key` (ties by name).
std::vector<std::size_t> rendezvous_order(std::string_view key,
                                          const std::vector<std::string>& names);

}  // namespace xs::routing
