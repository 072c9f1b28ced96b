#include <catch2/catch.hpp>

#include "core/stats.hpp"

using namespace xs::loadgen::stats;

TEST_CASE("nearest-rank percentiles", "[stats]") {
    LatencySeries s;
    CHECK(s.percentile_ms(99) == 0);
    for (int i = 100; i >= 1; --i) s.add_ms(i);  // 1..100 ms, unsorted
    CHECK(s.percentile_ms(50) == Approx(50));
    CHECK(s.percentile_ms(90) == Approx(90));
    CHECK(s.percentile_ms(99) == Approx(99));
    CHECK(s.percentile_ms(100) == Approx(100));
    CHECK(s.percentile_ms(0) == Approx(1));
    auto m = s.summary();
    CHECK(m.count == 100);
    CHECK(m.min == Approx(1));
    CHECK(m.max == Approx(100));
    CHECK(m.mean == Approx(50.5));
    s.add_ms(1000);  // adding after a sort re-sorts
    CHECK(s.percentile_ms(100) == Approx(1000));
}

TEST_CASE("percentiles of small series", "[stats]") {
    LatencySeries s;
    s.add_us(1500);
    CHECK(s.percentile_ms(1) == Approx(1.5));
    CHECK(s.percentile_ms(99) == Approx(1.5));
    s.add_us(2500);
    CHECK(s.percentile_ms(50) == Approx(1.5));
    CHECK(s.percentile_ms(51) == Approx(2.5));
    LatencySeries t;
    t.add_us(100);
    t.merge(s);
    CHECK(t.count() == 3);
    CHECK(t.summary().min == Approx(0.1));
}

TEST_CASE("counters", "[stats]") {
    Counters c;
    c.add("join:timeout");
    c.add("join:timeout", 2);
    c.add("auth:not-authorized");
    CHECK(c.get("join:timeout") == 3);
    CHECK(c.get("nope") == 0);
    CHECK(c.total() == 4);
    CHECK(c.all().begin()->first == "auth:not-authorized");
}

TEST_CASE("/proc/PID/stat parsing", "[stats]") {
    std::string line =
        "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 3 0 "
        "100 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    auto st = parse_proc_stat(line);
    REQUIRE(st);
    CHECK(st->cpu_ticks == 175);
    CHECK(st->rss_pages == 2048);
    CHECK_FALSE(parse_proc_stat("garbage"));
    CHECK_FALSE(parse_proc_stat("1 (x) S 1 2"));
    CHECK(cpu_percent(100, 150, 0.5, 100) == Approx(100));
    CHECK(cpu_percent(100, 110, 1.0, 100) == Approx(10));
    CHECK(cpu_percent(100, 90, 1.0, 100) == 0);
    CHECK(cpu_percent(100, 110, 0, 100) == 0);
}

TEST_CASE("/proc/stat machine line parsing", "[stats]") {
    auto m = parse_machine_stat("cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n");
    REQUIRE(m);
    CHECK(m->busy_ticks == 100 + 5 + 50 + 3 + 2 + 1);
    CHECK(m->total_ticks == m->busy_ticks + 1000 + 20);
    CHECK_FALSE(parse_machine_stat("cpu0 1 2 3"));
    CHECK_FALSE(parse_machine_stat("cpu  1 2 3\n"));
    CHECK_FALSE(parse_machine_stat("intr 1 2 3 4 5 6 7 8"));
}
