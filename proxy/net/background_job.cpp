#include "proxy/net/background_job.h"

#include <memory>

namespace stickyproxy {

namespace {

struct BackgroundJob {
  uv_work_t request;
  std::function<void()> work;
  std::function<void()> done;
};

}  // namespace

void runInBackground(uv_loop_t* loop, std::function<void()> work, std::function<void()> done) {
  auto job = std::make_unique<BackgroundJob>();
  job->request.data = job.get();
  job->work = std::move(work);
  job->done = std::move(done);
  auto run = [](uv_work_t* request) { static_cast<BackgroundJob*>(request->data)->work(); };
  auto finish = [](uv_work_t* request, int /*status*/) {
    std::unique_ptr<BackgroundJob> owned(static_cast<BackgroundJob*>(request->data));
    owned->done();
  };
  if (uv_queue_work(loop, &job->request, run, finish) == 0) {
    job.release();  // owned by the queue until `finish`
    return;
  }
  // The loop refused (it cannot for a valid loop): do the work inline rather than drop it.
  job->work();
  job->done();
}

}  // namespace stickyproxy
