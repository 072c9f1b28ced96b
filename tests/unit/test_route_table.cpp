#include <catch2/catch.hpp>

#include <set>

#include "routing/rendezvous.hpp"
#include "routing/route_table.hpp"

using namespace xs::routing;

namespace {

using Table = std::shared_ptr<const RouteTable>;
using Errors = std::vector<CompileError>;

Table compile_ok(const TableSpec& spec) {
    auto r = RouteTable::compile(spec);
    if (auto* errs = std::get_if<Errors>(&r)) {
        for (const auto& e : *errs) UNSCOPED_INFO("route " << e.route << ": " << e.message);
        FAIL("unexpected compile errors");
    }
    return std::get<Table>(r);
}

Errors compile_errors(const TableSpec& spec) {
    auto r = RouteTable::compile(spec);
    REQUIRE(std::holds_alternative<Errors>(r));
    return std::get<Errors>(r);
}

RouteSpec route(std::vector<std::string> domains, std::vector<std::string> backends,
                std::string name = {}, std::vector<std::string> listeners = {},
                Balance balance = Balance::Failover) {
    RouteSpec r;
    r.name = std::move(name);
    r.domains = std::move(domains);
    r.backends = std::move(backends);
    r.listeners = std::move(listeners);
    r.balance = balance;
    return r;
}

TableSpec base_spec() {
    TableSpec s;
    s.backends = {"main", "brewery", "t1", "t2", "t3"};
    s.listeners = {"c2s", "component"};
    return s;
}

// The route name chosen for a domain on a listener, or "" for no match.
std::string routed(const Table& t, std::string_view listener, std::string_view domain) {
    auto d = t->lookup(listener, domain);
    return d ? std::string(d->route_name) : std::string();
}

bool has_error(const Errors& errs, std::size_t route, RouteField field, std::size_t item,
               std::string_view fragment) {
    for (const auto& e : errs)
        if (e.route == route && e.field == field && e.item == item &&
            e.message.find(fragment) != std::string::npos)
            return true;
    return false;
}

}  // namespace

TEST_CASE("route table: the contract's example", "[route_table]") {
    TableSpec s = base_spec();
    s.routes = {route({"meet.example.com", "guest.meet.example.com"}, {"main"}, "client"),
                route({"auth.jvb.example.com"}, {"brewery", "main"}),
                route({"*"}, {"t1", "t2", "t3"}, "pool", {}, Balance::Hash)};
    Table t = compile_ok(s);
    CHECK(t->route_count() == 3);
    CHECK(t->route_name(0) == "client");
    CHECK(t->route_name(1) == "auth.jvb.example.com");  // defaulted to its first domain
    CHECK(t->backends() == s.backends);

    auto d = t->lookup("c2s", "guest.meet.example.com");
    REQUIRE(d);
    CHECK(d->route == 0);
    CHECK(d->route_name == "client");
    CHECK(d->balance == Balance::Failover);
    CHECK(d->candidates == std::vector<std::size_t>{0});

    d = t->lookup("component", "auth.jvb.example.com");
    REQUIRE(d);
    CHECK(d->candidates == std::vector<std::size_t>{1, 0});  // failover in route order

    d = t->lookup("c2s", "tenant1.example.org");
    REQUIRE(d);
    CHECK(d->route_name == "pool");
    CHECK(d->balance == Balance::Hash);
    // Hash: rendezvous order of the route's backend names, mapped to table indices.
    auto order = rendezvous_order("tenant1.example.org", {"t1", "t2", "t3"});
    std::vector<std::size_t> expected;
    for (auto i : order) expected.push_back(2 + i);
    CHECK(d->candidates == expected);
    CHECK(d->candidates == std::vector<std::size_t>{4, 3, 2});  // pinned: t3, t2, t1
}

TEST_CASE("route table: exact beats wildcard beats *, longest wildcard wins", "[route_table]") {
    TableSpec s = base_spec();
    s.routes = {route({"*"}, {"t1"}, "any"),
                route({"*.example.com"}, {"t2"}, "wild"),
                route({"*.b.example.com"}, {"t3"}, "wild-b"),
                route({"x.b.example.com", "EXAMPLE.com."}, {"main"}, "exact")};
    Table t = compile_ok(s);
    CHECK(routed(t, "c2s", "x.b.example.com") == "exact");
    CHECK(routed(t, "c2s", "y.b.example.com") == "wild-b");
    CHECK(routed(t, "c2s", "z.y.b.example.com") == "wild-b");
    CHECK(routed(t, "c2s", "b.example.com") == "wild");  // *.b.example.com needs one more label
    CHECK(routed(t, "c2s", "a.example.com") == "wild");
    CHECK(routed(t, "c2s", "example.com") == "exact");   // normalised pattern
    CHECK(routed(t, "c2s", "example.org") == "any");
    CHECK(routed(t, "c2s", "com") == "any");
    CHECK(routed(t, "c2s", "localhost") == "any");
}

TEST_CASE("route table: *.example.com does not match example.com", "[route_table]") {
    TableSpec s = base_spec();
    s.routes = {route({"*.example.com"}, {"t1"}, "wild")};
    Table t = compile_ok(s);
    CHECK(routed(t, "c2s", "a.example.com") == "wild");
    CHECK(routed(t, "c2s", "example.com").empty());
    CHECK(routed(t, "c2s", "badexample.com").empty());
    CHECK_FALSE(t->lookup("c2s", "nowhere.org"));
}

TEST_CASE("route table: listeners filter routes", "[route_table]") {
    TableSpec s = base_spec();
    s.routes = {route({"meet.example.com"}, {"main"}, "c2s-only", {"c2s"}),
                route({"meet.example.com"}, {"brewery"}, "component-only", {"component"}),
                route({"*.example.com"}, {"t1"}, "wild-c2s", {"c2s"}),
                route({"*"}, {"t2"}, "any-component", {"component"})};
    Table t = compile_ok(s);
    CHECK(routed(t, "c2s", "meet.example.com") == "c2s-only");
    CHECK(routed(t, "component", "meet.example.com") == "component-only");
    CHECK(routed(t, "c2s", "a.example.com") == "wild-c2s");
    CHECK(routed(t, "component", "a.example.com") == "any-component");
    CHECK(routed(t, "c2s", "other.org").empty());
    CHECK(routed(t, "component", "other.org") == "any-component");
    CHECK(routed(t, "unknown-listener", "meet.example.com").empty());
}

TEST_CASE("route table: an empty table routes nothing", "[route_table]") {
    Table t = compile_ok(base_spec());
    CHECK(t->route_count() == 0);
    CHECK_FALSE(t->lookup("c2s", "example.com"));
    RouteTable blank;
    CHECK_FALSE(blank.lookup("c2s", "example.com"));
}

TEST_CASE("route table: every compile error kind, located", "[route_table]") {
    TableSpec s = base_spec();
    s.routes = {
        /*0*/ route({"a.example.com", "bad domain", "a.example.com"}, {"main", "ghost", "main"}),
        /*1*/ route({}, {}, "empty"),
        /*2*/ route({"b.example.com"}, {"main"}, "", {"c2s", "nope", "c2s"}),
        /*3*/ route({"*.x.example", "b.example.com"}, {"t1"}, "dup-domain"),
        /*4*/ route({"c.example.com"}, {"t2"}, "dup-domain"),
        /*5*/ route({"a.example.com"}, {"t3"}, "other", {"component"}),
        /*6*/ route({"a.*.com", "*"}, {"t1"}),
    };
    Errors e = compile_errors(s);
    for (const auto& x : e) UNSCOPED_INFO("route " << x.route << " item " << x.item << ": " << x.message);
    CHECK(has_error(e, 0, RouteField::Domains, 1, "invalid domain pattern 'bad domain'"));
    CHECK(has_error(e, 0, RouteField::Domains, 2, "listed twice"));
    CHECK(has_error(e, 0, RouteField::Backends, 1, "unknown backend 'ghost'"));
    CHECK(has_error(e, 0, RouteField::Backends, 2, "named twice"));
    CHECK(has_error(e, 1, RouteField::Domains, 0, "no domains"));
    CHECK(has_error(e, 1, RouteField::Backends, 0, "no backends"));
    CHECK(has_error(e, 2, RouteField::Listeners, 1, "unknown listener 'nope'"));
    CHECK(has_error(e, 2, RouteField::Listeners, 2, "named twice"));
    // Route 3 shares b.example.com with route 2 (listeners c2s vs all: overlap).
    CHECK(has_error(e, 3, RouteField::Domains, 1, "already routed by route 'b.example.com'"));
    CHECK(has_error(e, 4, RouteField::Name, 0, "route name 'dup-domain'"));
    // Route 5 is limited to "component" but route 0 applies everywhere.
    CHECK(has_error(e, 5, RouteField::Domains, 0, "already routed"));
    CHECK(has_error(e, 6, RouteField::Domains, 0, "invalid domain pattern 'a.*.com'"));
    CHECK(e.size() == 12);
}

TEST_CASE("route table: same pattern on disjoint listeners is fine", "[route_table]") {
    TableSpec s = base_spec();
    s.routes = {route({"*"}, {"t1"}, "a", {"c2s"}), route({"*"}, {"t2"}, "b", {"component"})};
    compile_ok(s);
    s.routes.push_back(route({"*"}, {"t3"}, "c", {"component", "c2s"}));
    Errors e = compile_errors(s);
    REQUIRE(e.size() == 1);
    CHECK(e[0].route == 2);
    CHECK(e[0].field == RouteField::Domains);
    CHECK(e[0].item == 0);
    // Patterns compare after normalisation.
    s.routes = {route({"Example.COM."}, {"t1"}, "a"), route({"example.com"}, {"t2"}, "b")};
    CHECK(compile_errors(s).size() == 1);
    s.routes = {route({"*.Example.COM"}, {"t1"}, "a"), route({"*.example.com."}, {"t2"}, "b")};
    CHECK(compile_errors(s).size() == 1);
    s.routes = {route({"*.example.com"}, {"t1"}, "a"), route({"example.com"}, {"t2"}, "b")};
    compile_ok(s);
}

TEST_CASE("route table: defaulted names collide with explicit ones", "[route_table]") {
    TableSpec s = base_spec();
    s.routes = {route({"meet.example.com"}, {"main"}, "Meet.example.com"),
                route({"MEET.example.com.", "x.example.com"}, {"t1"}, "", {"component"}),
                route({"*.example.com"}, {"t2"}),
                route({"y.example.com"}, {"t3"}, "*.example.com")};
    Errors e = compile_errors(s);
    for (const auto& x : e) UNSCOPED_INFO("route " << x.route << ": " << x.message);
    // Route 1's name defaults to "meet.example.com" (normalised), not the explicit
    // "Meet.example.com" of route 0: names are compared as written, so no clash there; but its
    // domain clashes with route 0's on every listener route 1 applies on.
    CHECK(has_error(e, 1, RouteField::Domains, 0, "already routed"));
    // Route 3's explicit name equals route 2's defaulted one.
    CHECK(has_error(e, 3, RouteField::Name, 0, "route name '*.example.com'"));
    CHECK(e.size() == 2);

    s.routes = {route({"a.example.com"}, {"main"}, "dup"), route({"dup", "b.example.com"}, {"t1"})};
    e = compile_errors(s);
    REQUIRE(e.size() == 1);
    CHECK(e[0].route == 1);
    CHECK(e[0].field == RouteField::Domains);  // the defaulted name came from domains[0]
    CHECK(e[0].item == 0);
}

TEST_CASE("route table: hash routes keep domains on their backend", "[route_table]") {
    TableSpec s = base_spec();
    s.routes = {route({"*"}, {"t1", "t2", "t3"}, "pool", {}, Balance::Hash)};
    Table t = compile_ok(s);
    TableSpec s2 = s;
    s2.routes[0].backends = {"t3", "t1", "t2"};  // order does not matter for hashing
    Table t2 = compile_ok(s2);
    for (int i = 0; i < 500; ++i) {
        std::string d = "tenant" + std::to_string(i) + ".example.net";
        auto a = t->lookup("c2s", d);
        auto b = t2->lookup("c2s", d);
        REQUIRE(a);
        REQUIRE(b);
        CHECK(a->candidates.size() == 3);
        CHECK(a->candidates == b->candidates);
        CHECK(t->lookup("c2s", d)->candidates == a->candidates);
    }
}

TEST_CASE("route table: hash_key = room ranks by the room, else by the domain", "[route_table]") {
    TableSpec spec;
    spec.backends = {"s1", "s2", "s3"};
    spec.listeners = {"web"};
    spec.routes = {route({"meet.example.com"}, {"s1", "s2", "s3"}, "rooms", {}, Balance::Hash)};
    spec.routes[0].hash_key = HashKey::Room;
    auto t = compile_ok(spec);
    std::vector<std::string> names = {"s1", "s2", "s3"};
    std::set<std::size_t> firsts;
    for (int i = 0; i < 30; ++i) {
        std::string room = "room" + std::to_string(i);
        auto d = t->lookup("web", "meet.example.com", room);
        REQUIRE(d);
        CHECK(d->candidates == rendezvous_order(room, names));
        firsts.insert(d->candidates[0]);
    }
    CHECK(firsts.size() == 3);  // one domain's rooms spread over every backend
    auto no_room = t->lookup("web", "meet.example.com", "");
    REQUIRE(no_room);
    CHECK(no_room->candidates == rendezvous_order("meet.example.com", names));
    // A domain-hashed route ignores the room.
    spec.routes[0].hash_key = HashKey::Domain;
    auto by_domain = compile_ok(spec);
    CHECK(by_domain->lookup("web", "meet.example.com", "room1")->candidates ==
          rendezvous_order("meet.example.com", names));
}
