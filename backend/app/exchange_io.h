// Reading small JSON request bodies and streaming files back, for the app's routes.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <picojson.h>

#include "backend/app/app_context.h"

namespace stickyproxy::backend {

// Collects the request body (at most options().max_json_body bytes) and calls `done` on the
// loop thread with it parsed as a JSON object; an empty body is an empty object. Answers by
// itself instead: 413 for a larger body, 400 for text that is not a JSON object.
void readJsonBody(AppContext& app, const ServerExchangePtr& exchange, std::function<void(picojson::object)> done);

// Streams the regular file at `path` as a 200 answer of `content_type`, reading it in blocks as
// the client takes them (a large download never sits in memory); gzip-encoded as it streams when
// AppContext::gzipFor() says so (then chunked, without Content-Length). Sent with
// Cache-Control: private, no-cache and an ETag from the file's size and modification time; a
// request whose If-None-Match names it gets 304 without the body. `download_name` non-empty adds
// Content-Disposition: attachment. A missing file gets 404 {"status":"error","message":
// not_found_message}. `path` must already be validated by the caller.
void sendFile(AppContext& app, const ServerExchangePtr& exchange, const std::string& path,
              std::string_view content_type, std::string_view download_name, std::string not_found_message);

// The JSON string member `key` of `object`, or `fallback`.
std::string stringMember(const picojson::object& object, std::string_view key, std::string fallback = {});

}  // namespace stickyproxy::backend
