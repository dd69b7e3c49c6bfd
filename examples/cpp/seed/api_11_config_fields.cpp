// From the API reference (seed 001), "GhostConfig": the field examples (use_disk_backing,
// disk_file_path, max_memory_pages, compress_before_disk, enable_verbose_logging), verbatim
// in order; main(), the `config` they set and a check of the documented defaults are added.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
    {  // added: the documented defaults
        GhostConfig d;
        if (d.use_disk_backing || d.disk_file_path != "ghostmem.swap" || d.max_memory_pages != 0 ||
            !d.compress_before_disk || d.enable_verbose_logging || d.encrypt_disk_pages) {
            return 1;
        }
    }
GhostConfig config;
config.use_disk_backing = true; // Enable disk backing
    // disk_file_path examples
config.disk_file_path = "ghostmem_swap.dat"; // Current directory
config.disk_file_path = "/tmp/myapp_ghost.swap"; // Linux absolute path
config.disk_file_path = "C:\\Temp\\ghostmem.swap"; // Windows absolute path
    // max_memory_pages examples
config.max_memory_pages = 256; // 256 * 4KB = 1MB RAM limit
config.max_memory_pages = 1024; // 1024 * 4KB = 4MB RAM limit
config.max_memory_pages = 262144; // 262144 * 4KB = 1GB RAM limit
    // compress_before_disk examples
config.compress_before_disk = true; // Compress (recommended)
config.compress_before_disk = false; // No compression (faster I/O)
    // enable_verbose_logging examples
// Silent mode (production)
config.enable_verbose_logging = false;
// Verbose mode (development/debugging)
config.enable_verbose_logging = true;
    return config.max_memory_pages == 262144 ? 0 : 1;  // added
}  // added
