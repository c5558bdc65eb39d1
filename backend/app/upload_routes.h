// POST /upload_both_files, /upload/chunk and /upload/finalize.
#pragma once

#include "backend/app/app_context.h"
#include "backend/app/multipart_receiver.h"
#include "backend/app/session_operations.h"

namespace stickyproxy::backend {

class UploadRoutes {
 public:
  UploadRoutes(AppContext& app, SessionOperations& operations) : app_(app), operations_(operations) {}

  // Multipart csv_file (.csv, required) and shapefile (.zip, optional), streamed into a staging
  // directory, then checked and committed (SessionOperations::commitUpload).
  void uploadBothFiles(const ServerExchangePtr& exchange);
  // Multipart upload_id, file_type (csv|shapefile), chunk_index, total_chunks, then the file
  // part `chunk`: stored as <session>/chunks/<upload_id>/<file_type>.<index>.
  void uploadChunk(const ServerExchangePtr& exchange);
  // JSON {upload_id, csv_filename, shapefile_filename, csv_total_chunks, shp_total_chunks}:
  // reassembles the chunks (400 "Missing chunk {i} for {file_type}" when one is absent) and
  // commits them like uploadBothFiles.
  void finalizeUpload(const ServerExchangePtr& exchange);

 private:
  // The multipart boundary of the request, or answers 400 and returns empty.
  std::string boundaryOrReject(const ServerExchangePtr& exchange);
  void answerUpload(const std::weak_ptr<ServerExchange>& exchange, const Answer& answer);
  // The answer to a multipart body that stopped (form.ok false): the client's own problems are
  // counted as refused (`reason`, or upload_too_large), the server's as server failures.
  Answer refusedForm(const ReceivedForm& form, std::string_view reason);

  AppContext& app_;
  SessionOperations& operations_;
};

}  // namespace stickyproxy::backend
