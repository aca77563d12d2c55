#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace meshflow::gateway {

// A fixed set of threads taking tasks from a bounded queue. Upstream scrapes run here so their
// number is bounded whatever the number of nodes or concurrent requests.
class WorkerPool {
 public:
  WorkerPool(size_t threads, size_t max_queue);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues a task; false (and the task is not run) when the queue is full or the pool stopping.
  bool Submit(std::function<void()> task);
  size_t queued() const;

 private:
  void Run();

  const size_t max_queue_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace meshflow::gateway
