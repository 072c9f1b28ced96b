#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "routing/rendezvous.hpp"

using namespace xs::routing;

TEST_CASE("rendezvous_score is pinned (changing it reshuffles every hashed domain)",
          "[rendezvous]") {
    // Computed by an independent implementation of FNV-1a(key, 0xFF, name) + splitmix64.
    CHECK(rendezvous_score("example.com", "prosody-t1") == 0x6d4c431557c096b2ULL);
    CHECK(rendezvous_score("", "") == 0x4f2db50f124040cdULL);
    CHECK(rendezvous_score("example.com", "prosody-t1") !=
          rendezvous_score("example.co", "mprosody-t1"));
}

TEST_CASE("rendezvous_order gives fixed choices for known domains", "[rendezvous]") {
    const std::vector<std::string> names = {"prosody-t1", "prosody-t2", "prosody-t3"};
    using V = std::vector<std::size_t>;
    CHECK(rendezvous_order("example.com", names) == V{2, 1, 0});
    CHECK(rendezvous_order("meet.example.com", names) == V{0, 2, 1});
    CHECK(rendezvous_order("tenant1.example.org", names) == V{1, 2, 0});
    CHECK(rendezvous_order("tenant2.example.org", names) == V{1, 2, 0});
    CHECK(rendezvous_order("xn--bcher-kva.example", names) == V{2, 1, 0});
}

TEST_CASE("rendezvous_order depends on names, not positions", "[rendezvous]") {
    std::vector<std::string> names = {"a", "b", "c", "d", "e"};
    std::vector<std::string> shuffled = {"d", "a", "e", "c", "b"};
    for (int i = 0; i < 200; ++i) {
        std::string key = "k";  // appended, not "k" + ...: GCC 12's false -Wrestrict at -O3
        key.append(std::to_string(i)).append(".example");
        auto o1 = rendezvous_order(key, names);
        auto o2 = rendezvous_order(key, shuffled);
        REQUIRE(o1.size() == names.size());
        for (std::size_t j = 0; j < o1.size(); ++j) CHECK(names[o1[j]] == shuffled[o2[j]]);
    }
}

TEST_CASE("rendezvous_order: edge cases", "[rendezvous]") {
    CHECK(rendezvous_order("x", {}).empty());
    CHECK(rendezvous_order("x", {"only"}) == std::vector<std::size_t>{0});
    // Equal names score equally: ties keep index order, every index appears once.
    auto o = rendezvous_order("x", {"same", "same", "same"});
    CHECK(o == std::vector<std::size_t>{0, 1, 2});
    // More backends than the inline score buffer.
    std::vector<std::string> many;
    for (int i = 0; i < 100; ++i) many.push_back("backend-" + std::to_string(i));
    auto big = rendezvous_order("example.com", many);
    REQUIRE(big.size() == 100);
    for (std::size_t i = 1; i < big.size(); ++i)
        CHECK(rendezvous_score("example.com", many[big[i - 1]]) >=
              rendezvous_score("example.com", many[big[i]]));
    auto sorted = big;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == i);
}

TEST_CASE("rendezvous: removing one backend of five moves only its domains", "[rendezvous]") {
    const std::vector<std::string> five = {"prosody-t1", "prosody-t2", "prosody-t3",
                                           "prosody-t4", "prosody-t5"};
    std::vector<std::string> four = five;
    four.erase(four.begin() + 2);  // prosody-t3 goes away
    const int kDomains = 10000;
    std::map<std::string, int> load;
    int moved = 0;
    for (int i = 0; i < kDomains; ++i) {
        std::string d = "tenant" + std::to_string(i) + ".example" + std::to_string(i % 7) + ".org";
        const std::string& before = five[rendezvous_order(d, five).front()];
        const std::string& after = four[rendezvous_order(d, four).front()];
        ++load[before];
        if (before == "prosody-t3") {
            CHECK(after != before);
            ++moved;
        } else {
            CHECK(after == before);  // nobody else moves
        }
        // The domains of the removed backend go to their second choice.
        auto order = rendezvous_order(d, five);
        if (before == "prosody-t3") CHECK(after == five[order[1]]);
    }
    // Spread: 2000 expected per backend; binomial sd ~40, so +-15% is far outside noise.
    for (const auto& name : five) {
        INFO(name << ": " << load[name]);
        CHECK(load[name] > 1700);
        CHECK(load[name] < 2300);
    }
    CHECK(moved == load["prosody-t3"]);
}
