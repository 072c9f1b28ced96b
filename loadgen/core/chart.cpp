#include "chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "xml_stream.hpp"

namespace xs::loadgen::chart {

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

std::string tick_label(double v) {
    char buf[32];
    if (std::fabs(v - std::round(v)) < 1e-9) std::snprintf(buf, sizeof buf, "%.0f", v);
    else std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

}  // namespace

double nice_step(double range, int n) {
    if (range <= 0 || n <= 0) return 1;
    double raw = range / n;
    double p = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
        if (m * p >= raw) return m * p;
    return 10 * p;
}

std::string line_chart(const Spec& spec, const std::vector<Series>& series,
                       const std::vector<Marker>& markers) {
    const double left = 60, right = 170, top = 36, bottom = 46;
    const double W = spec.width, H = spec.height;
    const double pw = W - left - right, ph = H - top - bottom;
    double x0 = 0, x1 = 1, y1 = spec.y_min_max;
    bool any = false;
    for (const Series& s : series)
        for (auto [x, y] : s.points) {
            if (!any) x0 = x1 = x;
            any = true;
            x0 = std::min(x0, x);
            x1 = std::max(x1, x);
            y1 = std::max(y1, y);
        }
    x0 = std::min(x0, 0.0);  // time axes start at the start of the run
    if (x1 <= x0) x1 = x0 + 1;
    double ystep = nice_step(y1, 5);
    y1 = std::ceil(y1 / ystep) * ystep;
    double xstep = nice_step(x1 - x0, 8);
    auto X = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
    auto Y = [&](double y) { return top + ph - y / y1 * ph; };

    std::string o;
    o += "<svg xmlns='http://www.w3.org/2000/svg' width='" + std::to_string(spec.width) +
         "' height='" + std::to_string(spec.height) + "' font-family='sans-serif' font-size='12'>\n";
    o += "<rect width='100%' height='100%' fill='white'/>\n";
    o += "<text x='" + fmt(W / 2) + "' y='20' text-anchor='middle' font-size='14'>" +
         xml::escape(spec.title) + "</text>\n";
    for (double y = 0; y <= y1 + 1e-9; y += ystep) {
        o += "<line x1='" + fmt(left) + "' x2='" + fmt(left + pw) + "' y1='" + fmt(Y(y)) + "' y2='" +
             fmt(Y(y)) + "' stroke='#ddd'/>";
        o += "<text x='" + fmt(left - 6) + "' y='" + fmt(Y(y) + 4) + "' text-anchor='end'>" +
             tick_label(y) + "</text>\n";
    }
    for (double x = std::ceil(x0 / xstep) * xstep; x <= x1 + 1e-9; x += xstep) {
        o += "<line x1='" + fmt(X(x)) + "' x2='" + fmt(X(x)) + "' y1='" + fmt(top + ph) + "' y2='" +
             fmt(top + ph + 4) + "' stroke='#444'/>";
        o += "<text x='" + fmt(X(x)) + "' y='" + fmt(top + ph + 16) + "' text-anchor='middle'>" +
             tick_label(x) + "</text>\n";
    }
    o += "<rect x='" + fmt(left) + "' y='" + fmt(top) + "' width='" + fmt(pw) + "' height='" +
         fmt(ph) + "' fill='none' stroke='#444'/>\n";
    o += "<text x='" + fmt(left + pw / 2) + "' y='" + fmt(H - 8) + "' text-anchor='middle'>" +
         xml::escape(spec.x_label) + "</text>\n";
    o += "<text transform='translate(14," + fmt(top + ph / 2) +
         ") rotate(-90)' text-anchor='middle'>" + xml::escape(spec.y_label) + "</text>\n";
    for (std::size_t i = 0; i < markers.size(); ++i) {
        const Marker& m = markers[i];
        if (m.x < x0 || m.x > x1) continue;
        o += "<line x1='" + fmt(X(m.x)) + "' x2='" + fmt(X(m.x)) + "' y1='" + fmt(top) + "' y2='" +
             fmt(top + ph) + "' stroke='#999' stroke-dasharray='4,3'/>";
        o += "<text x='" + fmt(X(m.x) + 3) + "' y='" + fmt(top + 12 + 12 * static_cast<double>(i % 3)) +
             "' fill='#555' font-size='10'>" + xml::escape(m.label) + "</text>\n";
    }
    for (std::size_t i = 0; i < series.size(); ++i) {
        const Series& s = series[i];
        const char* color = kColors[i % (sizeof kColors / sizeof kColors[0])];
        if (!s.points.empty()) {
            o += "<polyline fill='none' stroke='" + std::string(color) + "' stroke-width='1.5' points='";
            for (auto [x, y] : s.points) o += fmt(X(x)) + "," + fmt(Y(y)) + " ";
            o += "'/>\n";
        }
        double ly = top + 10 + 18 * static_cast<double>(i);
        o += "<line x1='" + fmt(left + pw + 10) + "' x2='" + fmt(left + pw + 30) + "' y1='" + fmt(ly) +
             "' y2='" + fmt(ly) + "' stroke='" + color + "' stroke-width='3'/>";
        o += "<text x='" + fmt(left + pw + 36) + "' y='" + fmt(ly + 4) + "'>" + xml::escape(s.name) +
             "</text>\n";
    }
    o += "</svg>\n";
    return o;
}

}  // namespace xs::loadgen::chart
