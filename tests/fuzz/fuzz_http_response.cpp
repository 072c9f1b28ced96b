// libFuzzer target: the HTTP/1.1 response head reader and the body framing tracker
// (routing/http_response).
//
// Input: byte 0 chooses the request method (bit 0: HEAD, else GET) and the mode (bit 1):
//   mode 0: the rest is a backend's response, head then body. The head reader runs whole, byte
//     by byte (NeedMore until exactly the deciding byte) and in two splits, all with the same
//     outcome; on Done the bytes after the head go to response_body_framing(head, method), fed
//     whole, byte by byte and in two splits: same status, bytes taken and detail; a framer takes
//     every byte it is given while NeedMore and none after Done; a Length body is Done exactly
//     at its length; a Done body re-fed alone (plus trailing bytes) ends at the same byte.
//   mode 1: the rest is data cut into chunks by its own bytes and encoded as a valid chunked body
//     (sizes in hex of either case, optional extensions, optional trailers), followed by junk:
//     the chunked framer must say Done at exactly the encoding's end, in every split.
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_split.hpp"
#include "routing/http_response.hpp"

using namespace xs::routing;
using xs::fuzz::feed_chunks;

namespace {

std::string head_outcome(const HttpResponseReader& r) {
    std::string s = std::to_string(static_cast<int>(r.status())) + " seen=" +
                    std::to_string(r.bytes_seen()) + " " + r.detail();
    if (r.status() != HeadStatus::Done) return s;
    const auto& h = r.head();
    s += "|" + std::to_string(h.status) + "|" + h.reason + "|" + std::to_string(h.content_length) +
         std::to_string(h.has_content_length) + std::to_string(h.chunked) +
         std::to_string(h.keep_alive) + "|" + h.upgrade + "|" + std::to_string(h.head_bytes);
    for (const auto& f : h.headers) s += "\n" + f.raw;
    return s;
}

std::string run_head(std::string_view in, const std::vector<std::size_t>& lens) {
    HttpResponseReader r;
    feed_chunks(in, lens, [&](std::string_view p) {
        XS_FUZZ_CHECK(r.feed(p) == r.status(), "feed() and status() differ", in);
    });
    return head_outcome(r);
}

struct Framed {
    BodyStatus status;
    std::size_t used;
    std::string detail;
    bool operator==(const Framed&) const = default;
    std::string text() const {
        return std::to_string(static_cast<int>(status)) + " used=" + std::to_string(used) + " " + detail;
    }
};

Framed run_body(BodyFramer f, std::string_view in, const std::vector<std::size_t>& lens,
                std::string_view input) {
    std::size_t used = 0;
    feed_chunks(in, lens, [&](std::string_view p) {
        const BodyStatus before = f.status();
        const std::size_t n = f.feed(p);
        XS_FUZZ_CHECK(n <= p.size(), "took more than fed", input);
        if (before != BodyStatus::NeedMore) XS_FUZZ_CHECK(n == 0, "took bytes after a verdict", input);
        if (f.status() == BodyStatus::NeedMore) XS_FUZZ_CHECK(n == p.size(), "NeedMore, bytes left", input);
        if (f.status() == BodyStatus::Reject) XS_FUZZ_CHECK(!f.detail().empty(), "no detail", input);
        used += n;
    });
    XS_FUZZ_CHECK(f.body_bytes() == used, "body_bytes() is not what was taken", input);
    return {f.status(), used, f.detail()};
}

void check_framing(const BodyFramer& f, std::string_view body, std::string_view input) {
    const Framed ref = run_body(f, body, {}, input);
    XS_FUZZ_CHECK(run_body(f, body, xs::fuzz::ones(body), input) == ref, "framing byte by byte differs", input);
    XS_FUZZ_CHECK(run_body(f, body, xs::fuzz::split_a(body), input) == ref, "framing split A differs", input);
    XS_FUZZ_CHECK(run_body(f, body, xs::fuzz::split_b(body), input) == ref, "framing split B differs", input);
    if (ref.status == BodyStatus::Done) {
        const Framed again = run_body(f, std::string(body.substr(0, ref.used)) + "0\r\n\r\n", {}, input);
        XS_FUZZ_CHECK(again.status == BodyStatus::Done && again.used == ref.used,
                      "a Done body re-fed alone ends elsewhere", input);
    }
    if (f.kind() == BodyFramer::Kind::UntilClose)
        XS_FUZZ_CHECK(ref.status == BodyStatus::NeedMore && ref.used == body.size(), "until-close ended", input);
}

void mode_response(std::string_view in, std::string_view method) {
    const std::string ref = run_head(in, {});
    HttpResponseReader r;
    r.feed(in);
    XS_FUZZ_CHECK(r.bytes_seen() <= in.size(), "more seen than fed", in);
    {
        HttpResponseReader b;
        for (std::size_t i = 0; i < in.size(); ++i) {
            const HeadStatus s = b.feed(in.substr(i, 1));
            if (r.status() == HeadStatus::NeedMore || i + 1 < r.bytes_seen())
                XS_FUZZ_CHECK(s == HeadStatus::NeedMore, "head verdict too early byte by byte", in);
        }
        XS_FUZZ_CHECK(head_outcome(b) == ref, "head byte by byte differs", in);
    }
    XS_FUZZ_CHECK(run_head(in, xs::fuzz::split_a(in)) == ref, "head split A differs", in);
    XS_FUZZ_CHECK(run_head(in, xs::fuzz::split_b(in)) == ref, "head split B differs", in);
    if (r.status() != HeadStatus::Done) return;
    const auto& h = r.head();
    XS_FUZZ_CHECK(h.status >= 100 && h.status <= 599, "status out of range", in);
    XS_FUZZ_CHECK(!(h.has_content_length && h.has_transfer_encoding), "CL with TE accepted", in);
    const BodyFramer f = response_body_framing(h, method);
    const std::string_view body = in.substr(h.head_bytes);
    check_framing(f, body, in);
    if (f.kind() == BodyFramer::Kind::Length) {
        const Framed ref_body = run_body(f, body, {}, in);
        const bool enough = body.size() >= h.content_length;
        XS_FUZZ_CHECK((ref_body.status == BodyStatus::Done) == enough &&
                          ref_body.used == (enough ? h.content_length : body.size()),
                      "Content-Length body framed wrong: " + ref_body.text(), in);
    }
}

void mode_chunked(std::string_view in) {
    std::string enc;
    std::size_t at = 0;
    static constexpr char kHex[] = "0123456789abcdef0123456789ABCDEF";
    while (at < in.size()) {
        const unsigned char c = static_cast<unsigned char>(in[at++]);
        const std::size_t n = std::min<std::size_t>(c % 40 + 1, in.size() - at);
        if (n == 0) break;
        std::string size;
        for (std::size_t v = n; v; v /= 16) size.insert(size.begin(), kHex[(v % 16) + ((c & 64) ? 16 : 0)]);
        if (c & 128) size.insert(0, "00");
        enc += size;
        if (c & 32) enc += c & 16 ? " ; ext=\"a b\"" : ";x";
        enc += "\r\n";
        enc += in.substr(at, n);
        enc += "\r\n";
        at += n;
    }
    enc += "0\r\n";
    if (!in.empty() && (in[0] & 1)) enc += "Expires: 0\r\nX-Trailer:\tv\r\n";
    enc += "\r\n";
    const std::string body = enc + "HTTP/1.1 200 OK\r\n";
    const Framed want{BodyStatus::Done, enc.size(), ""};
    XS_FUZZ_CHECK(run_body(BodyFramer::chunked(), body, {}, in) == want,
                  "valid chunked body not framed: " + run_body(BodyFramer::chunked(), body, {}, in).text(), in);
    check_framing(BodyFramer::chunked(), body, in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (data[0] & 2) mode_chunked(in);
    else mode_response(in, (data[0] & 1) ? "HEAD" : "GET");
    return 0;
}
