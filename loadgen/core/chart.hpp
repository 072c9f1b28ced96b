// SVG line charts: CPU per process over time (the picture an operator compares with their own
// monitoring), with vertical markers for the scenario's phases. Self-contained SVG, no scripts.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace xs::loadgen::chart {

struct Series {
    std::string name;
    std::vector<std::pair<double, double>> points;  // (x, y), x ascending
};

struct Marker {
    double x;
    std::string label;
};

struct Spec {
    std::string title;
    std::string x_label = "seconds";
    std::string y_label = "CPU % (100 = one core)";
    int width = 900;
    int height = 420;
    double y_min_max = 100;  // the y axis reaches at least this
};

std::string line_chart(const Spec& spec, const std::vector<Series>& series,
                       const std::vector<Marker>& markers);

// A "nice" axis step for a range (1, 2, 2.5 or 5 times a power of ten) giving about n ticks.
double nice_step(double range, int n);

}  // namespace xs::loadgen::chart
