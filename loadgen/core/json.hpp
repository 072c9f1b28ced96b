// A minimal streaming JSON writer (the report). Numbers that are not finite are written as null.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xs::loadgen {

class JsonWriter {
public:
    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    JsonWriter& key(std::string_view k);
    JsonWriter& value(std::string_view v);
    JsonWriter& value(const char* v) { return value(std::string_view(v)); }
    JsonWriter& value(double v);
    JsonWriter& value(std::int64_t v);
    JsonWriter& value(std::uint64_t v);
    JsonWriter& value(int v) { return value(static_cast<std::int64_t>(v)); }
    JsonWriter& value(bool v);
    JsonWriter& null();
    template <class T>
    JsonWriter& field(std::string_view k, T v) {
        key(k);
        return value(v);
    }
    const std::string& str() const { return out_; }

    static std::string quote(std::string_view s);

private:
    void comma();
    std::string out_;
    std::vector<bool> first_;
    bool after_key_ = false;
};

}  // namespace xs::loadgen
