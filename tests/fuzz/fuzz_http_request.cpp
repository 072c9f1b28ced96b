// libFuzzer target: the HTTP/1.1 request head reader (routing/http_head) and what the proxy does
// with an accepted head (routing/http_route_key).
//
// The input is the client's byte stream. The reader runs fed whole (unbounded limits: the
// reference), byte by byte (NeedMore until exactly the deciding byte, deaf after it), and in two
// fuzzer-chosen splits: every run must give the same outcome (status, reject status, detail,
// every head field, bytes seen). With the default 16384 and an input-chosen max_head_bytes the
// outcome is predicted from the reference (same verdict when decided within the limit, else 431
// at exactly byte max_head_bytes). On Done: head_bytes ends on "\r\n\r\n"; libhttp-parser 2.9.4
// (the oracle) also accepts the same bytes, with the same method, URL, version, Content-Length,
// chunked and upgrade (two documented http_parser bugs excused); render_backend_head() reads
// back as the same request plus the forwarded fields; http_route_key() gives a room/tenant/vnode
// that are lower-case, bounded, free of controls, and a hash_key built from them. Rejects are
// 400/414/431/501/505 with a printable detail ending in "(at byte N)".
#include <http_parser.h>

#include <cstring>
#include <limits>
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_split.hpp"
#include "routing/http_route_key.hpp"

using namespace xs::routing;
using xs::fuzz::feed_chunks;

namespace {

constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

std::string outcome(const HttpRequestReader& r) {
    std::string s = std::to_string(static_cast<int>(r.status())) + " " +
                    std::to_string(r.reject_status()) + " seen=" + std::to_string(r.bytes_seen()) +
                    " " + r.detail();
    if (r.status() != HeadStatus::Done) return s;
    const auto& h = r.head();
    s += "|" + h.method + "|" + h.target + "|" + h.path + "|" + h.query + "|" +
         std::to_string(h.version_minor) + "|" + h.host + "|" + h.host_port + "|" + h.upgrade +
         "|" + h.ws_key + "|" + h.ws_version + "|" + std::to_string(h.content_length) +
         std::to_string(h.has_content_length) + std::to_string(h.chunked) +
         std::to_string(h.keep_alive) + std::to_string(h.head_bytes);
    for (const auto& f : h.headers) s += "\n" + f.raw;
    return s;
}

std::string run(std::string_view in, const std::vector<std::size_t>& lens, std::size_t max_head,
                std::size_t max_target = kUnbounded) {
    HttpRequestReader r(max_head, max_target);
    feed_chunks(in, lens, [&](std::string_view p) {
        XS_FUZZ_CHECK(r.feed(p) == r.status(), "feed() and status() differ", in);
    });
    return outcome(r);
}

bool printable_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c >= 0x7F) return false;
    return true;
}

struct Oracle {
    std::string url;
    static int on_url(http_parser* p, const char* at, std::size_t n) {
        static_cast<Oracle*>(p->data)->url.append(at, n);
        return 0;
    }
    static int on_headers(http_parser* p) {
        http_parser_pause(p, 1);
        return 0;
    }
};

// http_parser 2.9.4 takes a field whose name only starts with "Transfer-Encoding" (e.g.
// "Transfer-Encodingx") for Transfer-Encoding: with a Content-Length it refuses the request, and
// after a real "Transfer-Encoding: chunked" it forgets chunked
// (regressions/fuzz_http_request/oracle-te-prefix-name). The reader treats such a field as the
// unrelated field it is; the oracle is not consulted for these heads.
bool oracle_te_prefix_bug(const HttpRequestHead& h) {
    constexpr std::string_view kTe = "transfer-encoding";
    for (const auto& f : h.headers)
        if (f.name.size() > kTe.size() && http::iequals(std::string_view(f.name).substr(0, kTe.size()), kTe))
            return true;
    return false;
}

// http_parser 2.9.4 takes only SP after Content-Length's digits and refuses HTAB there; RFC 9110
// 5.6.3 OWS is SP or HTAB, and the reader takes both
// (regressions/fuzz_http_request/oracle-cl-trailing-tab). Only this refusal is excused.
bool oracle_cl_tab_bug(const HttpRequestHead& h) {
    for (const auto& f : h.headers) {
        if (!http::iequals(f.name, "content-length")) continue;
        const std::string_view after = std::string_view(f.raw).substr(f.raw.find(':') + 1);
        const std::size_t last = after.find_last_of("0123456789");
        if (last != std::string_view::npos && after.find('\t', last) != std::string_view::npos)
            return true;
    }
    return false;
}

void check_oracle(std::string_view in, const HttpRequestHead& h) {
    if (oracle_te_prefix_bug(h)) return;
    Oracle o;
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &o;
    http_parser_settings s;
    std::memset(&s, 0, sizeof s);
    s.on_url = Oracle::on_url;
    s.on_headers_complete = Oracle::on_headers;
    const std::string_view head = in.substr(0, h.head_bytes);
    http_parser_execute(&p, &s, head.data(), head.size());
    const auto err = HTTP_PARSER_ERRNO(&p);
    if (err == HPE_INVALID_CONTENT_LENGTH && oracle_cl_tab_bug(h)) return;
    XS_FUZZ_CHECK(err == HPE_PAUSED, std::string("accepted, but http_parser says ") +
                                         http_errno_name(err), in);
    XS_FUZZ_CHECK(http_method_str(static_cast<http_method>(p.method)) == h.method,
                  "http_parser reads another method", in);
    XS_FUZZ_CHECK(o.url == h.target, "http_parser reads another URL: " + o.url, in);
    XS_FUZZ_CHECK(p.http_major == 1 && p.http_minor == h.version_minor, "another version", in);
    XS_FUZZ_CHECK(((p.flags & F_CHUNKED) != 0) == h.chunked, "chunked differs", in);
    if (h.has_content_length)
        XS_FUZZ_CHECK(p.content_length == h.content_length, "Content-Length differs", in);
}

void check_route(std::string_view in, const HttpRequestHead& h) {
    std::string why;
    auto key = http_route_key(h, &why);
    if (!key) {
        XS_FUZZ_CHECK(!why.empty(), "a route key error without a reason", in);
        return;
    }
    for (const std::string* v : {&key->room, &key->tenant, &key->vnode}) {
        XS_FUZZ_CHECK(v->size() <= kMaxRoomBytes, "value too long", in);
        for (unsigned char c : *v)
            XS_FUZZ_CHECK(c >= 0x20 && c != 0x7F && !(c >= 'A' && c <= 'Z'),
                          "control or upper-case byte in a routing value", in);
    }
    XS_FUZZ_CHECK(key->tenant.find('/') == std::string::npos, "tenant with '/'", in);
    const std::string want = key->room.empty() ? ""
                             : key->tenant.empty() ? key->room
                                                   : key->tenant + "/" + key->room;
    XS_FUZZ_CHECK(key->hash_key == want, "hash_key is not tenant/room", in);
    XS_FUZZ_CHECK(key->tenant.empty() || key->endpoint != HttpEndpoint::Other ||
                      h.query.find("prefix=") != std::string::npos,
                  "a path tenant on an Other endpoint", in);

    // The replayed head reads back as the same request plus the forwarded fields.
    const std::string out = render_backend_head(h, "192.0.2.1", true);
    HttpRequestReader again(kUnbounded, kUnbounded);
    XS_FUZZ_CHECK(again.feed(out) == HeadStatus::Done, "replayed head rejected: " + again.detail(),
                  in);
    const auto& a = again.head();
    XS_FUZZ_CHECK(a.head_bytes == out.size(), "replayed head has bytes after it", in);
    XS_FUZZ_CHECK(a.method == h.method && a.target == h.target && a.host == h.host &&
                      a.content_length == h.content_length && a.chunked == h.chunked,
                  "replayed head differs", in);
    std::size_t proto = 0, xff = 0;
    for (const auto& f : a.headers) {
        proto += http::iequals(f.name, "x-forwarded-proto");
        xff += http::iequals(f.name, "x-forwarded-for");
    }
    XS_FUZZ_CHECK(proto == 1 && a.headers.back().raw == "X-Forwarded-Proto: https",
                  "X-Forwarded-Proto not replaced", in);
    XS_FUZZ_CHECK(xff >= 1, "no X-Forwarded-For", in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    HttpRequestReader ref_reader(kUnbounded, kUnbounded);
    ref_reader.feed(in);
    const std::string ref = outcome(ref_reader);
    const std::size_t seen = ref_reader.bytes_seen();
    const HeadStatus st = ref_reader.status();

    XS_FUZZ_CHECK(seen <= size, "more bytes seen than fed", in);
    if (st == HeadStatus::NeedMore) XS_FUZZ_CHECK(seen == size, "NeedMore before the end", in);
    if (st == HeadStatus::Reject) {
        const int s = ref_reader.reject_status();
        XS_FUZZ_CHECK(s == 400 || s == 414 || s == 431 || s == 501 || s == 505,
                      "unexpected status " + std::to_string(s), in);
        const std::string tail = " (at byte " + std::to_string(seen) + ")";
        const std::string& d = ref_reader.detail();
        XS_FUZZ_CHECK(d.size() > tail.size() && d.compare(d.size() - tail.size(), tail.size(), tail) == 0,
                      "detail does not end with the deciding byte: " + d, in);
        XS_FUZZ_CHECK(printable_ascii(d), "detail is not printable ASCII: " + d, in);
    }
    if (st == HeadStatus::Done) {
        const auto& h = ref_reader.head();
        XS_FUZZ_CHECK(h.head_bytes == seen && h.head_bytes >= 4 &&
                          in.substr(h.head_bytes - 4, 4) == "\r\n\r\n",
                      "head does not end with an empty line", in);
        check_oracle(in, h);
        check_route(in, h);
    }

    // Byte by byte.
    {
        HttpRequestReader r(kUnbounded, kUnbounded);
        for (std::size_t i = 0; i < size; ++i) {
            const HeadStatus s = r.feed(in.substr(i, 1));
            if (st == HeadStatus::NeedMore || i + 1 < seen)
                XS_FUZZ_CHECK(s == HeadStatus::NeedMore && r.bytes_seen() == i + 1,
                              "byte by byte: verdict before byte " + std::to_string(seen), in);
            else
                XS_FUZZ_CHECK(r.bytes_seen() == seen, "bytes counted after the verdict", in);
        }
        XS_FUZZ_CHECK(outcome(r) == ref, "byte by byte: " + outcome(r) + " vs " + ref, in);
    }
    XS_FUZZ_CHECK(run(in, xs::fuzz::split_a(in), kUnbounded) == ref, "split A differs", in);
    XS_FUZZ_CHECK(run(in, xs::fuzz::split_b(in), kUnbounded) == ref, "split B differs", in);

    // max_head_bytes predicted from the reference.
    const std::size_t maxes[] = {16384, size ? 1 + (data[0] * (size + 1)) / 256 : 1};
    for (std::size_t max : maxes) {
        std::string want = ref;
        if (st == HeadStatus::NeedMore ? size >= max : seen > max) {
            want = "2 431 seen=" + std::to_string(max) + " no complete head within max_head_bytes = " +
                   std::to_string(max) + " (at byte " + std::to_string(max) + ")";
        }
        XS_FUZZ_CHECK(run(in, {}, max) == want, "max_head_bytes=" + std::to_string(max) + ": " +
                                                    run(in, {}, max) + " vs " + want, in);
        XS_FUZZ_CHECK(run(in, xs::fuzz::ones(in), max) == want, "max byte by byte", in);
    }
    // A target limit the input chooses: split-invariant too.
    const std::size_t max_target = size > 1 ? data[1] % 64 : 8;
    XS_FUZZ_CHECK(run(in, {}, 16384, max_target) == run(in, xs::fuzz::ones(in), 16384, max_target),
                  "max_target_bytes: byte by byte differs", in);
    return 0;
}
