// SRV groups folded into a configuration (config/discovered.hpp) and the loader's checks of
// the `srv` keys.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <set>

#include "config/discovered.hpp"
#include "config/loader.hpp"
#include "config/values.hpp"

using namespace xs::config;

namespace {

const char* kGroups = R"([[listener]]
name = "c2s"
bind = "127.0.0.1:0"
[[backend]]
name = "brewery"
address = "127.0.0.1:5300"
[[backend]]
name = "shards"
srv = "_xmpp-client._tcp.prosody.jitsi.svc.cluster.local"
check = "tcp"
max_connecting = 7
[[backend]]
name = "web"
srv = "_http._tcp.prosody.jitsi.svc.cluster.local"
member_suffix = "-http"
[[route]]
domains = ["auth.meet.test"]
backends = ["brewery"]
[[route]]
name = "rooms"
domains = ["meet.test"]
backends = ["shards"]
balance = "hash"
hash_key = "room"
[[route]]
name = "fallback"
domains = ["*"]
backends = ["shards", "brewery"]
)";

std::shared_ptr<const Config> load(const char* text) {
    auto r = load_config_string(text, "t.toml");
    INFO((r.errors.empty() ? std::string() : r.errors[0].to_string()));
    REQUIRE(r.errors.empty());
    return r.config;
}

Member member(const std::string& name, const std::string& ip, unsigned port, uint16_t prio = 0, uint16_t weight = 0) {
    Member m;
    m.name = name;
    auto* sin = reinterpret_cast<sockaddr_in*>(&m.address.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, ip.c_str(), &sin->sin_addr);
    m.address.len = sizeof(sockaddr_in);
    m.address_text = m.address.to_string();
    m.priority = prio;
    m.weight = weight;
    return m;
}

std::vector<std::string> names(const Config& c) {
    std::vector<std::string> out;
    for (const auto& b : c.backends) out.push_back(b.name);
    return out;
}

// Where each of `keys` goes first on `route`'s listener-agnostic lookup.
std::map<std::string, std::string> placement(const Config& c, const std::vector<std::string>& keys) {
    std::map<std::string, std::string> out;
    for (const auto& k : keys) {
        auto d = c.routes->lookup("c2s", "meet.test", k);
        REQUIRE(d);
        out[k] = c.routes->backends()[d->candidates.front()];
    }
    return out;
}

}  // namespace

TEST_CASE("members are named by their SRV target, lower case, without the final dot", "[config][srv]") {
    CHECK(member_names({{"Prosody-0.prosody.jitsi.svc.cluster.local.", 5222, 0, 0},
                        {"prosody-1.prosody.jitsi.svc.cluster.local", 5222, 0, 0}}) ==
          std::vector<std::string>{"prosody-0.prosody.jitsi.svc.cluster.local",
                                   "prosody-1.prosody.jitsi.svc.cluster.local"});
    // One host with several ports (several Prosody processes on one machine): host:port each.
    CHECK(member_names({{"box.test.", 5301, 0, 0}, {"box.test", 5302, 0, 0}, {"other.test", 5303, 0, 0}}) ==
          std::vector<std::string>{"box.test:5301", "box.test:5302", "other.test"});
    CHECK(member_names({}).empty());
}

TEST_CASE("groups expand into their members; routes name the members", "[config][srv]") {
    auto base = load(kGroups);
    CHECK(has_discovery(*base));
    Discovered found;
    found["shards"] = {member("p-1.x", "10.0.0.2", 5222), member("p-0.x", "10.0.0.1", 5222)};
    found["web"] = {member("p-0.x", "10.0.0.1", 5280), member("p-1.x", "10.0.0.2", 5280)};
    auto e = expand_discovered(*base, found);
    INFO((e.notes.empty() ? "" : e.notes[0]));
    REQUIRE(e.config);
    CHECK(e.notes.empty());
    const Config& c = *e.config;
    CHECK(names(c) == std::vector<std::string>{"brewery", "p-0.x", "p-1.x", "p-0.x-http", "p-1.x-http"});
    CHECK(c.routes->backends() == names(c));
    for (const auto& b : c.backends) {
        if (b.name == "brewery") continue;
        CHECK(b.srv.empty());
        CHECK_FALSE(b.group.empty());
    }
    // The members take the group's other keys.
    CHECK(c.backends[1].check == CheckKind::Tcp);
    CHECK(c.backends[1].max_connecting == 7);
    CHECK(c.backends[1].address_text == "10.0.0.1:5222");
    CHECK(c.backends[1].probe_domain == "meet.test");
    CHECK(c.backends[3].address_text == "10.0.0.1:5280");
    // Failover order: the group's members in place of the group, then the rest.
    auto d = c.routes->lookup("c2s", "other.test");
    REQUIRE(d);
    std::vector<std::string> order;
    for (auto i : d->candidates) order.push_back(c.routes->backends()[i]);
    CHECK(order == std::vector<std::string>{"p-0.x", "p-1.x", "brewery"});
    // The file's own names stay in the base.
    CHECK(base->route_spec.routes[1].backends == std::vector<std::string>{"shards"});
}

TEST_CASE("failover members go by priority, then weight, then name", "[config][srv]") {
    auto base = load(kGroups);
    Discovered found;
    found["shards"] = {member("c", "10.0.0.3", 1, 10, 5), member("a", "10.0.0.1", 1, 20, 90),
                       member("b", "10.0.0.2", 1, 10, 50), member("d", "10.0.0.4", 1, 10, 50)};
    auto e = expand_discovered(*base, found);
    REQUIRE(e.config);
    auto d = e.config->routes->lookup("c2s", "other.test");
    std::vector<std::string> order;
    for (auto i : d->candidates) order.push_back(e.config->routes->backends()[i]);
    CHECK(order == std::vector<std::string>{"b", "d", "c", "a", "brewery"});
}

TEST_CASE("replicas given the same answer in any order place every room alike", "[config][srv]") {
    auto base = load(kGroups);
    std::vector<std::string> rooms;
    for (int i = 0; i < 1000; ++i) rooms.push_back("room" + std::to_string(i));
    Discovered a, b;
    a["shards"] = {member("p-0.x", "10.0.0.1", 5222), member("p-1.x", "10.0.0.2", 5222), member("p-2.x", "10.0.0.3", 5222)};
    b["shards"] = {a["shards"][2], a["shards"][0], a["shards"][1]};
    b["shards"][0].address = a["shards"][1].address;  // addresses differ: names decide
    auto ea = expand_discovered(*base, a), eb = expand_discovered(*base, b);
    REQUIRE(ea.config);
    REQUIRE(eb.config);
    auto pa = placement(*ea.config, rooms), pb = placement(*eb.config, rooms);
    CHECK(pa == pb);
    // A fourth target moves about a quarter of the rooms, all of them to it.
    Discovered c = a;
    c["shards"].push_back(member("p-3.x", "10.0.0.4", 5222));
    auto pc = placement(*expand_discovered(*base, c).config, rooms);
    int moved = 0;
    for (const auto& r : rooms)
        if (pa[r] != pc[r]) {
            ++moved;
            CHECK(pc[r] == "p-3.x");
        }
    CHECK(moved > 150);
    CHECK(moved < 350);
    // Removing a target moves only its rooms.
    Discovered d = a;
    d["shards"].erase(d["shards"].begin() + 1);
    auto pd = placement(*expand_discovered(*base, d).config, rooms);
    for (const auto& r : rooms)
        if (pa[r] != "p-1.x") CHECK(pd[r] == pa[r]);
}

TEST_CASE("a group without members stays one drained backend", "[config][srv]") {
    auto base = load(kGroups);
    auto e = expand_discovered(*base, {});
    REQUIRE(e.config);
    CHECK(names(*e.config) == std::vector<std::string>{"brewery", "shards", "web"});
    CHECK(e.config->backends[1].drain);
    CHECK(e.config->backends[1].address.len == 0);
    CHECK(e.config->backends[1].check == CheckKind::None);
}

TEST_CASE("a member named like another backend is left out and noted", "[config][srv]") {
    auto base = load(kGroups);
    Discovered found;
    found["shards"] = {member("brewery", "10.0.0.9", 1), member("p-0.x", "10.0.0.1", 1)};
    found["web"] = {member("p-0.x", "10.0.0.1", 2)};  // p-0.x-http: no clash thanks to the suffix
    auto e = expand_discovered(*base, found);
    REQUIRE(e.config);
    CHECK(names(*e.config) == std::vector<std::string>{"brewery", "p-0.x", "p-0.x-http"});
    REQUIRE(e.notes.size() == 1);
    CHECK(e.notes[0].find("'brewery'") != std::string::npos);
}

TEST_CASE("the loader checks the srv keys", "[config][srv]") {
    auto errs = [](const std::string& backend) {
        std::string text = "[[listener]]\nname = \"c\"\nbind = \"127.0.0.1:0\"\n[[backend]]\nname = \"b\"\n" +
                           backend + "[[route]]\ndomains = [\"*\"]\nbackends = [\"b\"]\n";
        auto r = load_config_string(text, "t.toml");
        std::vector<std::string> out;
        for (const auto& e : r.errors) out.push_back(e.to_string());
        return out;
    };
    CHECK(errs("srv = \"_x._tcp.a.test\"\n").empty());
    CHECK(errs("")[0] == "t.toml:4:1: [[backend]] needs 'address' or 'srv'");
    CHECK(errs("address = \"127.0.0.1:1\"\nsrv = \"_x._tcp.a.test\"\n")[0] ==
          "t.toml:7:7: 'srv' and 'address' exclude each other: the SRV answer gives the addresses");
    CHECK(errs("srv = \"a b\"\n")[0].find("t.toml:6:7: 'srv' must be a DNS name") == 0);
    CHECK(errs("srv = \"a..b\"\n").size() == 1);
    CHECK(errs("srv = \"_x._tcp.a.test\"\nshard = \"s\"\n")[0].find("t.toml:7:9: 'shard' names one backend") == 0);
    CHECK(errs("address = \"127.0.0.1:1\"\nsrv_min_interval = \"1s\"\n")[0] ==
          "t.toml:7:20: 'srv_min_interval' needs 'srv'");
    CHECK(errs("srv = \"_x._tcp.a.test\"\nsrv_min_interval = \"2m\"\n")[0] ==
          "t.toml:7:20: 'srv_min_interval' must not be above 'srv_max_interval'");
    CHECK(errs("srv = \"_x._tcp.a.test\"\nmember_suffix = \"/x\"\n")[0].find("'member_suffix' must be") != std::string::npos);
}

TEST_CASE("resolvers are IP addresses with an optional port", "[config][srv]") {
    CHECK(resolver_csv_item("10.96.0.10", nullptr) == "10.96.0.10:53");
    CHECK(resolver_csv_item("127.0.0.1:5353", nullptr) == "127.0.0.1:5353");
    CHECK(resolver_csv_item("::1", nullptr) == "[::1]:53");
    CHECK(resolver_csv_item("[::1]:5353", nullptr) == "[::1]:5353");
    std::string why;
    CHECK_FALSE(resolver_csv_item("dns.test:53", &why));
    CHECK(why.find("IP address") != std::string::npos);
    CHECK_FALSE(resolver_csv_item("127.0.0.1:99999", nullptr));
    auto r = load_config_string("[proxy]\nresolvers = [\"127.0.0.1\", \"nameserver\"]\n[[listener]]\nname = \"c\"\n"
                                "bind = \"127.0.0.1:0\"\n[[backend]]\nname = \"b\"\naddress = \"127.0.0.1:1\"\n"
                                "[[route]]\ndomains = [\"*\"]\nbackends = [\"b\"]\n", "t.toml");
    REQUIRE(r.errors.size() == 1);
    INFO(r.errors[0].to_string());
    CHECK(r.errors[0].to_string().find("t.toml:2:27: 'resolvers' item 'nameserver': a resolver is an IP address") == 0);
}

TEST_CASE("DNS names as SRV names and targets are written", "[config][srv]") {
    CHECK(is_dns_name("_xmpp-client._tcp.prosody.jitsi.svc.cluster.local"));
    CHECK(is_dns_name("a.b."));
    CHECK_FALSE(is_dns_name(""));
    CHECK_FALSE(is_dns_name("."));
    CHECK_FALSE(is_dns_name("a..b"));
    CHECK_FALSE(is_dns_name("a b"));
    CHECK_FALSE(is_dns_name(std::string(64, 'a')));
    CHECK(is_dns_name(std::string(63, 'a')));
}
