#include "http_response.hpp"

#include <cctype>

#include "http_fields.hpp"

namespace xs::loadgen::http {

namespace {

constexpr std::size_t kMaxLine = 4096;  // a chunk-size line or a trailer field

}  // namespace

ResponseReader::Result ResponseReader::fail(std::string msg) {
    error_ = std::move(msg);
    st_ = St::Error;
    return Result::Error;
}

void ResponseReader::reset() {
    st_ = St::Head;
    buf_.clear();
    pos_ = seen_ = remaining_ = 0;
    status_ = 0;
    keep_alive_ = true;
    body_.clear();
    error_.clear();
    extra_.clear();
}

ResponseReader::Result ResponseReader::feed(const char* data, std::size_t n) {
    if (st_ == St::Done) {
        extra_.append(data, n);
        return Result::Done;
    }
    if (st_ == St::Error) return Result::Error;
    seen_ += n;
    buf_.append(data, n);
    Result r = step();
    if (pos_ > 0) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    return r;
}

ResponseReader::Result ResponseReader::finish() {
    switch (st_) {
        case St::Done: return Result::Done;
        case St::Error: return Result::Error;
        case St::UntilClose:
            st_ = St::Done;
            return Result::Done;
        case St::Head:
            return fail(seen_ == 0 ? "connection closed before the response"
                                   : "connection closed inside the response head");
        default:
            return fail("connection closed inside the response body (" + std::to_string(body_.size()) +
                        " bytes read)");
    }
}

bool ResponseReader::line(std::string& out) {
    std::size_t nl = buf_.find('\n', pos_);
    if (nl == std::string::npos) return false;
    std::size_t end = nl > pos_ && buf_[nl - 1] == '\r' ? nl - 1 : nl;
    out.assign(buf_, pos_, end - pos_);
    pos_ = nl + 1;
    return true;
}

bool ResponseReader::parse_head(std::string_view head) {
    std::size_t eol = head.find("\r\n");
    std::string_view sl = head.substr(0, eol);
    // HTTP/1.1 200 OK
    if (!sl.starts_with("HTTP/1.") || sl.size() < 12 || (sl[7] != '0' && sl[7] != '1') || sl[8] != ' ' ||
        !std::isdigit(static_cast<unsigned char>(sl[9])) || !std::isdigit(static_cast<unsigned char>(sl[10])) ||
        !std::isdigit(static_cast<unsigned char>(sl[11])) || (sl.size() > 12 && sl[12] != ' ')) {
        fail("bad status line: " + std::string(sl.substr(0, 80)));
        return false;
    }
    auto bad = [this](std::string m) {
        fail(std::move(m));
        return false;
    };
    status_ = (sl[9] - '0') * 100 + (sl[10] - '0') * 10 + (sl[11] - '0');
    keep_alive_ = sl[7] == '1';
    bool chunked = false, has_length = false;
    std::size_t length = 0;
    std::size_t p = eol == std::string_view::npos ? head.size() : eol + 2;
    while (p < head.size()) {
        std::size_t e = head.find("\r\n", p);
        if (e == std::string_view::npos) e = head.size();
        std::string_view h = head.substr(p, e - p);
        p = e + 2;
        std::size_t colon = h.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            return bad("bad header line: " + std::string(h.substr(0, 80)));
        }
        std::string name = lower(trim(h.substr(0, colon)));
        std::string_view value = trim(h.substr(colon + 1));
        if (name == "connection") {
            each_token(value, [&](std::string_view t) {
                if (t == "close") keep_alive_ = false;
                else if (t == "keep-alive") keep_alive_ = true;
            });
        } else if (name == "content-length") {
            std::size_t v = 0;
            if (value.empty() || value.size() > 12) return bad("bad Content-Length");
            for (char c : value) {
                if (!std::isdigit(static_cast<unsigned char>(c))) return bad("bad Content-Length");
                v = v * 10 + static_cast<std::size_t>(c - '0');
            }
            if (has_length && v != length) return bad("two different Content-Length fields");
            has_length = true;
            length = v;
        } else if (name == "transfer-encoding") {
            std::string last;
            each_token(value, [&](std::string_view t) { last = t; });
            if (last != "chunked") return bad("unsupported Transfer-Encoding: " + std::string(value));
            chunked = true;
        }
    }
    if (status_ >= 100 && status_ < 200) return true;  // interim: the caller reads the next head
    if (status_ == 204 || status_ == 304) {
        st_ = St::Done;
    } else if (chunked) {
        st_ = St::ChunkSize;
    } else if (has_length) {
        if (length > max_body_) return bad("body over " + std::to_string(max_body_) + " bytes");
        remaining_ = length;
        st_ = length ? St::Body : St::Done;
    } else {
        st_ = St::UntilClose;
        keep_alive_ = false;
    }
    return true;
}

ResponseReader::Result ResponseReader::step() {
    std::string ln;
    for (;;) {
        switch (st_) {
            case St::Head: {
                std::size_t end = buf_.find("\r\n\r\n", pos_);
                if (end == std::string::npos) {
                    if (buf_.size() - pos_ > max_head_)
                        return fail("response head over " + std::to_string(max_head_) + " bytes");
                    return Result::NeedMore;
                }
                if (end - pos_ > max_head_)
                    return fail("response head over " + std::to_string(max_head_) + " bytes");
                std::string_view head(buf_.data() + pos_, end - pos_);
                if (!parse_head(head)) return Result::Error;
                pos_ = end + 4;
                continue;  // a 1xx left st_ at Head: read the next one
            }
            case St::Body:
            case St::ChunkData: {
                std::size_t take = std::min(remaining_, buf_.size() - pos_);
                body_.append(buf_, pos_, take);
                pos_ += take;
                remaining_ -= take;
                if (remaining_ > 0) return Result::NeedMore;
                st_ = st_ == St::Body ? St::Done : St::ChunkEnd;
                continue;
            }
            case St::ChunkSize: {
                if (!line(ln)) {
                    if (buf_.size() - pos_ > kMaxLine) return fail("chunk size line too long");
                    return Result::NeedMore;
                }
                std::size_t size = 0, i = 0;
                for (; i < ln.size() && std::isxdigit(static_cast<unsigned char>(ln[i])); ++i) {
                    if (i >= 12) return fail("chunk size too large");
                    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(ln[i])));
                    size = size * 16 + static_cast<std::size_t>(c <= '9' ? c - '0' : c - 'a' + 10);
                }
                std::string_view rest = trim(std::string_view(ln).substr(i));
                if (i == 0 || (!rest.empty() && rest.front() != ';')) return fail("bad chunk size: " + ln.substr(0, 40));
                if (size == 0) {
                    st_ = St::Trailer;
                    continue;
                }
                if (body_.size() + size > max_body_)
                    return fail("body over " + std::to_string(max_body_) + " bytes");
                remaining_ = size;
                st_ = St::ChunkData;
                continue;
            }
            case St::ChunkEnd:
                if (!line(ln)) {
                    if (buf_.size() - pos_ > 2) return fail("chunk data longer than its size");
                    return Result::NeedMore;
                }
                if (!ln.empty()) return fail("chunk data longer than its size");
                st_ = St::ChunkSize;
                continue;
            case St::Trailer:
                if (!line(ln)) {
                    if (buf_.size() - pos_ > kMaxLine) return fail("trailer field too long");
                    return Result::NeedMore;
                }
                if (ln.empty()) st_ = St::Done;
                continue;
            case St::UntilClose:
                if (body_.size() + (buf_.size() - pos_) > max_body_)
                    return fail("body over " + std::to_string(max_body_) + " bytes");
                body_.append(buf_, pos_, std::string::npos);
                pos_ = buf_.size();
                return Result::NeedMore;
            case St::Done:
                extra_.append(buf_, pos_, std::string::npos);
                pos_ = buf_.size();
                return Result::Done;
            case St::Error:
                return Result::Error;
        }
    }
}

}  // namespace xs::loadgen::http
