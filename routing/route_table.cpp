#include "routing/route_table.hpp"

#include <algorithm>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "routing/rendezvous.hpp"

namespace xs::routing {

namespace {

struct SvHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};
// Keyed by normalised domain (exact) or suffix (wildcard); routes in config order. Within one
// key at most one route applies on any listener (compile() refuses overlaps).
using RouteMap = std::unordered_map<std::string, std::vector<std::size_t>, SvHash, std::equal_to<>>;

std::string pattern_text(const DomainPattern& p) {
    switch (p.kind) {
    case PatternKind::Any: return "*";
    case PatternKind::Wildcard: return "*." + p.text;
    case PatternKind::Exact: return p.text;
    }
    return p.text;
}

// Empty listener lists mean "every listener".
bool listeners_overlap(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    if (a.empty() || b.empty()) return true;
    return std::any_of(a.begin(), a.end(),
                       [&](const std::string& x) { return std::find(b.begin(), b.end(), x) != b.end(); });
}

}  // namespace

struct RouteTable::Index {
    RouteMap exact;
    RouteMap wildcard;
    std::vector<std::size_t> any;
};

std::variant<std::shared_ptr<const RouteTable>, std::vector<CompileError>> RouteTable::compile(
    const TableSpec& spec) {
    std::vector<CompileError> errors;
    auto error = [&](std::size_t r, RouteField f, std::size_t item, std::string msg) {
        errors.push_back(CompileError{r, f, item, std::move(msg)});
    };

    std::unordered_map<std::string_view, std::size_t> backend_index;
    for (std::size_t i = 0; i < spec.backends.size(); ++i) backend_index.emplace(spec.backends[i], i);
    std::unordered_set<std::string_view> known_listeners(spec.listeners.begin(), spec.listeners.end());

    auto table = std::make_shared<RouteTable>();
    table->backends_ = spec.backends;
    auto index = std::make_shared<Index>();

    struct Placed {
        std::size_t route, item;
    };
    std::unordered_map<std::string, std::vector<Placed>> placed;  // pattern text -> where
    std::unordered_map<std::string, std::size_t> names;           // route name -> route

    for (std::size_t r = 0; r < spec.routes.size(); ++r) {
        const RouteSpec& rs = spec.routes[r];
        Route route;
        route.balance = rs.balance;
        route.hash_key = rs.hash_key;

        // Domains.
        std::vector<std::pair<DomainPattern, std::size_t>> patterns;  // valid ones, with item
        if (rs.domains.empty()) error(r, RouteField::Domains, 0, "route has no domains");
        for (std::size_t i = 0; i < rs.domains.size(); ++i) {
            std::string why;
            auto p = parse_pattern(rs.domains[i], &why);
            if (!p) {
                error(r, RouteField::Domains, i,
                      "invalid domain pattern '" + rs.domains[i] + "': " + why);
                continue;
            }
            std::string text = pattern_text(*p);
            bool twice = std::any_of(patterns.begin(), patterns.end(),
                                     [&](const auto& q) { return pattern_text(q.first) == text; });
            if (twice) {
                error(r, RouteField::Domains, i, "domain '" + text + "' listed twice in this route");
                continue;
            }
            patterns.emplace_back(std::move(*p), i);
        }

        // Name: explicit, else the first domain (normalised when valid).
        bool defaulted = rs.name.empty();
        if (!defaulted) {
            route.name = rs.name;
        } else if (!patterns.empty() && patterns.front().second == 0) {
            route.name = pattern_text(patterns.front().first);
        } else if (!rs.domains.empty()) {
            route.name = rs.domains.front();
        }

        // Backends.
        if (rs.backends.empty()) error(r, RouteField::Backends, 0, "route has no backends");
        for (std::size_t i = 0; i < rs.backends.size(); ++i) {
            const std::string& b = rs.backends[i];
            auto it = backend_index.find(b);
            if (it == backend_index.end()) {
                error(r, RouteField::Backends, i, "unknown backend '" + b + "'");
            } else if (std::find(route.backends.begin(), route.backends.end(), it->second) !=
                       route.backends.end()) {
                error(r, RouteField::Backends, i, "backend '" + b + "' named twice in this route");
            } else {
                route.backends.push_back(it->second);
                route.backend_names.push_back(b);
            }
        }

        // Listeners.
        for (std::size_t i = 0; i < rs.listeners.size(); ++i) {
            const std::string& l = rs.listeners[i];
            if (!known_listeners.contains(l)) {
                error(r, RouteField::Listeners, i, "unknown listener '" + l + "'");
            } else if (std::find(route.listeners.begin(), route.listeners.end(), l) !=
                       route.listeners.end()) {
                error(r, RouteField::Listeners, i, "listener '" + l + "' named twice in this route");
            } else {
                route.listeners.push_back(l);
            }
        }

        // Route names are metric labels: unique.
        if (!route.name.empty()) {
            auto [it, fresh] = names.emplace(route.name, r);
            if (!fresh)
                error(r, defaulted ? RouteField::Domains : RouteField::Name, 0,
                      "route name '" + route.name + "' is already used by an earlier route" +
                          (defaulted ? " (a route without a name is named after its first domain)"
                                     : ""));
        }

        // The same pattern in two routes that can apply on one listener is ambiguous.
        for (const auto& [p, item] : patterns) {
            std::string text = pattern_text(p);
            auto& where = placed[text];
            for (const Placed& other : where) {
                if (listeners_overlap(spec.routes[other.route].listeners, rs.listeners)) {
                    error(r, RouteField::Domains, item,
                          "domain '" + text + "' is already routed by route '" +
                              table->routes_[other.route].name + "' on the same listener");
                    break;
                }
            }
            where.push_back(Placed{r, item});
            switch (p.kind) {
            case PatternKind::Exact: index->exact[p.text].push_back(r); break;
            case PatternKind::Wildcard: index->wildcard[p.text].push_back(r); break;
            case PatternKind::Any: index->any.push_back(r); break;
            }
        }
        table->routes_.push_back(std::move(route));
    }

    if (!errors.empty()) return errors;
    table->index_ = std::move(index);
    return std::shared_ptr<const RouteTable>(std::move(table));
}

const std::string& RouteTable::route_name(std::size_t route) const { return routes_.at(route).name; }

std::optional<Decision> RouteTable::lookup(std::string_view listener, std::string_view domain,
                                           std::string_view room) const {
    if (!index_) return std::nullopt;
    const Index& idx = *index_;
    auto applies = [&](std::size_t r) {
        const auto& ls = routes_[r].listeners;
        return ls.empty() || std::find(ls.begin(), ls.end(), listener) != ls.end();
    };
    auto first_applying = [&](const std::vector<std::size_t>& rs) -> std::optional<std::size_t> {
        for (std::size_t r : rs)
            if (applies(r)) return r;
        return std::nullopt;
    };

    std::optional<std::size_t> hit;
    if (auto it = idx.exact.find(domain); it != idx.exact.end()) hit = first_applying(it->second);
    // Wildcards, longest suffix first: a.b.example.com tries b.example.com, example.com, com.
    for (auto dot = domain.find('.'); !hit && dot != std::string_view::npos;
         dot = domain.find('.', dot + 1)) {
        if (auto it = idx.wildcard.find(domain.substr(dot + 1)); it != idx.wildcard.end())
            hit = first_applying(it->second);
    }
    if (!hit) hit = first_applying(idx.any);
    if (!hit) return std::nullopt;

    const Route& route = routes_[*hit];
    Decision d;
    d.route = *hit;
    d.route_name = route.name;
    d.balance = route.balance;
    if (route.balance == Balance::Failover) {
        d.candidates = route.backends;
    } else {
        bool by_room = route.hash_key == HashKey::Room && !room.empty();
        d.candidates = rendezvous_order(by_room ? room : domain, route.backend_names);
        for (std::size_t& c : d.candidates) c = route.backends[c];
    }
    return d;
}

}  // namespace xs::routing
