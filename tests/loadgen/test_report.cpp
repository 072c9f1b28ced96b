#include <catch2/catch.hpp>

#include "core/chart.hpp"
#include "core/json.hpp"
#include "core/report.hpp"
#include "core/xml_stream.hpp"

using namespace xs::loadgen;

TEST_CASE("JSON writer", "[report]") {
    JsonWriter j;
    j.begin_object().field("a", 1).field("s", "x\"y\n\x01");
    j.key("arr").begin_array().value(1.5).value(true).null().begin_object().end_object().end_array();
    j.field("nan", 0.0 / 0.0);
    j.end_object();
    CHECK(j.str() == "{\"a\":1,\"s\":\"x\\\"y\\n\\u0001\",\"arr\":[1.5,true,null,{}],\"nan\":null}");
}

TEST_CASE("report: JSON carries counts, errors and percentiles", "[report]") {
    Report r;
    r.scenario = "join-storm";
    r.counts.add("participants_joined", 30);
    r.errors.add("join:timeout", 2);
    for (int i = 1; i <= 100; ++i) r.latency["join"].add_ms(i);
    r.phases.push_back({"storm", 1.5});
    r.procs.push_back(ProcSummary{"proxy", 12, 1.0, 0.5, 10, 20, 4, 5, 6, false});
    std::string js = r.json();
    CHECK(js.find("\"participants_joined\":30") != std::string::npos);
    CHECK(js.find("\"errors_total\":2") != std::string::npos);
    CHECK(js.find("\"join\":{\"count\":100,\"min\":1,\"mean\":50.5,\"p50\":50,\"p90\":90,\"p99\":99,\"max\":100}") !=
          std::string::npos);
    CHECK(js.find("\"name\":\"proxy\",\"pid\":12") != std::string::npos);
    std::string tx = r.text();
    CHECK(tx.find("join:timeout 2") != std::string::npos);
    CHECK(tx.find("storm@1.50") != std::string::npos);
}

TEST_CASE("chart: well-formed SVG with a line per series and the markers", "[report][chart]") {
    chart::Spec spec;
    spec.title = "CPU <A & C>";
    std::vector<chart::Series> s = {{"prosody", {{0, 10}, {1, 95}, {2, 140}}}, {"proxy", {{0, 1}, {2, 3}}}};
    std::string svg = chart::line_chart(spec, s, {{1.0, "storm"}});
    xml::StreamParser p;
    p.feed(svg);
    REQUIRE(p.next() == xml::StreamParser::Event::StreamOpen);  // the <svg> root
    int polylines = 0, texts = 0;
    while (true) {
        auto e = p.next();
        if (e == xml::StreamParser::Event::StreamClose) break;
        REQUIRE(e == xml::StreamParser::Event::Stanza);
        if (p.stanza().name == "polyline") ++polylines;
        if (p.stanza().name == "text") ++texts;
    }
    CHECK(polylines == 2);
    CHECK(svg.find("CPU &lt;A &amp; C&gt;") != std::string::npos);
    CHECK(svg.find(">storm<") != std::string::npos);
    CHECK(svg.find(">150<") != std::string::npos);  // y axis grew past 140 to a round tick
}

TEST_CASE("chart: nice axis steps", "[chart]") {
    CHECK(chart::nice_step(100, 5) == Approx(20));
    CHECK(chart::nice_step(140, 5) == Approx(50));
    CHECK(chart::nice_step(7, 8) == Approx(1));
    CHECK(chart::nice_step(0, 5) == 1);
}
