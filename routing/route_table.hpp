// The route table of the contract: compiled once from plain specs, immutable afterwards,
// shared by all workers. lookup() is pure: it does not know which backends are healthy; it
// returns the candidates in preference order and the caller skips the unhealthy ones.
#pragma once
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain.hpp"

namespace xs::routing {

enum class Balance { Failover, Hash };
// What a hash route ranks its backends by: the requested domain, or (on HTTP listeners) the
// room of the request (`?room=`, with its tenant); a request without a room uses the domain.
enum class HashKey { Domain, Room };

struct RouteSpec {
    std::string name;                    // empty: defaults to the first domain
    std::vector<std::string> domains;    // exact, "*.suffix" or "*"
    std::vector<std::string> backends;   // backend names, in failover order
    Balance balance = Balance::Failover;
    HashKey hash_key = HashKey::Domain;
    std::vector<std::string> listeners;  // empty: every listener
};

struct TableSpec {
    std::vector<std::string> backends;   // every configured backend name, in config order
    std::vector<std::string> listeners;  // every configured listener name
    std::vector<RouteSpec> routes;
};

// One problem found while compiling, located by route and field so that the config loader
// can turn it into FILE:LINE:COL.
enum class RouteField { Route, Name, Domains, Backends, Listeners };
struct CompileError {
    std::size_t route = 0;       // index into TableSpec::routes
    RouteField field = RouteField::Route;
    std::size_t item = 0;        // index into the field's list (0 for scalars)
    std::string message;
};

struct Decision {
    std::size_t route = 0;               // index into the routes
    std::string_view route_name;         // the route's (defaulted) name, the metrics label
    Balance balance = Balance::Failover;
    std::vector<std::size_t> candidates; // backend indices (into TableSpec::backends), best first
};

class RouteTable {
public:
    // Reports every problem: unknown backend or listener, duplicate domain (the same pattern in
    // two routes that can apply on the same listener; also the same pattern twice in one route),
    // invalid pattern, empty domain or backend list, a backend or listener named twice in one
    // route, duplicate route names. Errors come in route order, then field order. A duplicate
    // defaulted name is reported on Domains item 0 (where the name came from), an explicit one
    // on Name. Uniqueness of TableSpec::backends / listeners is the config loader's job (a
    // repeated backend name resolves to its first index).
    static std::variant<std::shared_ptr<const RouteTable>, std::vector<CompileError>> compile(
        const TableSpec& spec);

    // domain must be normalised (normalize_domain). Precedence: exact, then the longest
    // matching wildcard, then "*"; only routes that apply on `listener` are considered.
    // nullopt: no route matches (host-unknown). Failover: the route's backends in config order;
    // Hash: rendezvous_order of the route's backend names keyed by `domain`, or by `room` when
    // the route hashes on rooms and `room` is not empty. The only allocation is the returned
    // candidates vector.
    std::optional<Decision> lookup(std::string_view listener, std::string_view domain,
                                   std::string_view room = {}) const;

    const std::vector<std::string>& backends() const { return backends_; }
    std::size_t route_count() const { return routes_.size(); }
    const std::string& route_name(std::size_t route) const;

private:
    struct Route {
        std::string name;
        Balance balance = Balance::Failover;
        HashKey hash_key = HashKey::Domain;
        std::vector<std::size_t> backends;  // indices into backends_
        std::vector<std::string> backend_names;  // the same backends by name (hash keys)
        std::vector<std::string> listeners; // empty: all
    };
    std::vector<std::string> backends_;
    std::vector<Route> routes_;
    // Implementation-defined indexes (exact map, wildcards by suffix length, any) follow.
    struct Index;
    std::shared_ptr<const Index> index_;
};

}  // namespace xs::routing
