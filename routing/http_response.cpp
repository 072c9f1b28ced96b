#include "http_response.hpp"

#include <utility>

namespace xs::routing {

using http::iequals;
using http::printable;

HttpResponseReader::HttpResponseReader(std::size_t max_head_bytes)
    : lines_(max_head_bytes, 100, max_head_bytes, 400, false) {}

HeadStatus HttpResponseReader::feed(std::string_view bytes) {
    if (lines_.status() != HeadStatus::NeedMore) return lines_.status();
    if (lines_.feed(bytes) == HeadStatus::Done) finish();
    return lines_.status();
}

void HttpResponseReader::finish() {
    auto fail = [&](std::string why) {
        lines_.fail(502, why);
        head_ = HttpResponseHead{};
    };
    const std::string_view line = lines_.start_line();
    // "HTTP/1.x 200 OK": 8 + 1 + 3, then SP reason (or nothing).
    const bool shape = line.size() >= 12 && line.substr(0, 7) == "HTTP/1." &&
                       (line[7] == '0' || line[7] == '1') && line[8] == ' ' &&
                       (line.size() == 12 || line[12] == ' ');
    if (!shape) return fail("malformed status line: '" + printable(line) + "'");
    int code = 0;
    for (int i = 9; i < 12; ++i) {
        if (line[i] < '0' || line[i] > '9') return fail("malformed status code");
        code = code * 10 + (line[i] - '0');
    }
    if (code < 100 || code > 599) return fail("status code out of range");
    head_.version_minor = line[7] - '0';
    head_.status = code;
    if (line.size() > 12) head_.reason = std::string(line.substr(13));
    int lengths = 0;
    std::string te;
    for (const HeaderField& f : lines_.fields()) {
        if (iequals(f.name, "content-length")) {
            if (++lengths > 1) return fail("two Content-Length fields");
            if (!http::parse_decimal(f.value, head_.content_length))
                return fail("bad Content-Length '" + printable(f.value) + "'");
            head_.has_content_length = true;
        } else if (iequals(f.name, "transfer-encoding")) {
            head_.has_transfer_encoding = true;
            if (!te.empty()) te += ",";
            te += f.value;
        } else if (iequals(f.name, "connection")) {
            for (std::string_view t : http::split_list(f.value)) {
                head_.conn_keep_alive |= iequals(t, "keep-alive");
                head_.conn_close |= iequals(t, "close");
                head_.conn_upgrade |= iequals(t, "upgrade");
            }
        } else if (iequals(f.name, "upgrade")) {
            if (!head_.upgrade.empty() && !f.value.empty()) head_.upgrade += ", ";
            head_.upgrade += f.value;
        }
    }
    if (head_.has_transfer_encoding) {
        if (lengths) return fail("Content-Length together with Transfer-Encoding");
        const auto codings = http::split_list(te);
        head_.chunked = !codings.empty() && iequals(codings.back(), "chunked");
    }
    head_.keep_alive = head_.version_minor == 1 ? !head_.conn_close
                                                : head_.conn_keep_alive && !head_.conn_close;
    head_.head_bytes = lines_.bytes_seen();
    head_.headers = std::move(lines_.fields());
}

BodyFramer::BodyFramer(Kind k, std::uint64_t n) : kind_(k), remaining_(n) {
    if (k == Kind::None || (k == Kind::Length && n == 0)) status_ = BodyStatus::Done;
}

void BodyFramer::reject(std::string why) {
    status_ = BodyStatus::Reject;
    detail_ = std::move(why) + " (at body byte " + std::to_string(total_) + ")";
    trailer_line_.clear();
}

std::size_t BodyFramer::feed(std::string_view bytes) {
    std::size_t used = 0;
    while (used < bytes.size() && status_ == BodyStatus::NeedMore) {
        const std::size_t avail = bytes.size() - used;
        if (kind_ == Kind::UntilClose) {
            used += avail;
            total_ += avail;
        } else if (kind_ == Kind::Length || (kind_ == Kind::Chunked && st_ == St::Data)) {
            const std::size_t n =
                remaining_ < avail ? static_cast<std::size_t>(remaining_) : avail;
            used += n;
            total_ += n;
            remaining_ -= n;
            if (remaining_ == 0) {
                if (kind_ == Kind::Length) status_ = BodyStatus::Done;
                else st_ = St::DataCr;
            }
        } else {
            ++used;
            ++total_;
            if (step_chunked(static_cast<unsigned char>(bytes[used - 1]))) status_ = BodyStatus::Done;
        }
    }
    return used;
}

// One byte of chunked framing outside chunk data; true when the body is complete.
bool BodyFramer::step_chunked(unsigned char c) {
    auto hex = [](unsigned char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
    };
    switch (st_) {
    case St::Size:
        if (const int v = hex(c); v >= 0) {
            if (++digits_ > 15) return reject("chunk size over 15 hex digits"), false;
            remaining_ = remaining_ * 16 + static_cast<unsigned>(v);
            return false;
        }
        if (digits_ == 0) return reject("chunk size expected, got " + printable(std::string(1, static_cast<char>(c)))), false;
        line_ = digits_;
        [[fallthrough]];
    case St::SizeWs:  // BWS after the size: only ';' (an extension) or CR may follow
        if (++line_ > kMaxLineBytes) return reject("chunk size line too long"), false;
        if (c == ' ' || c == '\t') return st_ = St::SizeWs, false;
        if (c == ';') return st_ = St::Ext, false;
        if (c == '\r') return st_ = St::SizeLf, false;
        return reject("bad byte after chunk size: " + printable(std::string(1, static_cast<char>(c)))), false;
    case St::Ext:
        if (c == '\r') return st_ = St::SizeLf, false;
        if ((c < 0x20 && c != '\t') || c == 0x7F) return reject("control character in chunk extension"), false;
        if (++line_ > kMaxLineBytes) return reject("chunk extension too long"), false;
        return false;
    case St::SizeLf:
        if (c != '\n') return reject("CR not followed by LF after chunk size"), false;
        digits_ = 0;
        if (remaining_ == 0) {
            last_chunk_ = true;
            st_ = St::Trailer;
        } else {
            st_ = St::Data;
        }
        return false;
    case St::Data:
        return false;  // handled in bulk by feed()
    case St::DataCr:
        if (c != '\r') return reject("chunk data not followed by CRLF"), false;
        st_ = St::DataLf;
        return false;
    case St::DataLf:
        if (c != '\n') return reject("chunk data not followed by CRLF"), false;
        st_ = St::Size;
        return false;
    case St::Trailer:
        if (++trailer_ > kMaxTrailerBytes) return reject("trailer section too long"), false;
        if (c == '\r') return st_ = St::TrailerLf, false;
        if (c == '\n') return reject("bare LF in trailer section"), false;
        if ((c < 0x20 && c != '\t') || c == 0x7F) return reject("control character in trailer"), false;
        if (trailer_line_.empty() && (c == ' ' || c == '\t')) return reject("obs-fold in trailer section"), false;
        trailer_line_.push_back(static_cast<char>(c));
        return false;
    case St::TrailerLf: {
        if (c != '\n') return reject("CR not followed by LF in trailer section"), false;
        ++trailer_;
        if (trailer_line_.empty()) return true;
        const std::size_t colon = trailer_line_.find(':');
        if (colon == std::string::npos || !http::is_token(std::string_view(trailer_line_).substr(0, colon)))
            return reject("malformed trailer field"), false;
        trailer_line_.clear();
        st_ = St::Trailer;
        return false;
    }
    }
    return false;
}

BodyFramer response_body_framing(const HttpResponseHead& head, std::string_view request_method) {
    const int s = head.status;
    if (request_method == "HEAD" || (s >= 100 && s < 200) || s == 204 || s == 304 ||
        (request_method == "CONNECT" && s >= 200 && s < 300))
        return BodyFramer::none();
    if (head.has_transfer_encoding)
        return head.chunked ? BodyFramer::chunked() : BodyFramer::until_close();
    if (head.has_content_length) return BodyFramer::length(head.content_length);
    return BodyFramer::until_close();
}

BodyFramer request_body_framing(const HttpRequestHead& head) {
    if (head.chunked) return BodyFramer::chunked();
    if (head.has_content_length) return BodyFramer::length(head.content_length);
    return BodyFramer::none();
}

std::string_view http_reason_phrase(int status) {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

std::string http_error_response(int status, std::string_view reason_text, std::string_view detail) {
    auto clean = [](std::string_view s) {
        std::string out(s);
        for (char& c : out)
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7F) c = ' ';
        return out;
    };
    if (status < 100 || status > 999) status = 500;
    const std::string reason = clean(reason_text.empty() ? http_reason_phrase(status) : reason_text);
    const std::string body = clean(detail) + "\n";
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
    out += "Content-Type: text/plain; charset=utf-8\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "Connection: close\r\n\r\n";
    out += body;
    return out;
}

}  // namespace xs::routing
