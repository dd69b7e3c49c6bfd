// From the integration guide (seed 000), "Custom Allocator Examples > Example 2: AI Model
// Weights". Verbatim (a complete program).
#include "ghostmem/GhostAllocator.h"
#include <vector>
#include <array>

class NeuralNetworkLayer {
public:
    using WeightVector = std::vector<float, GhostAllocator<float>>;
    
    NeuralNetworkLayer(size_t input_size, size_t output_size) 
        : weights_(input_size * output_size) 
    {
        // Initialize weights (compressed automatically when not in use)
        for (size_t i = 0; i < weights_.size(); i++) {
            weights_[i] = (rand() % 100) / 100.0f;
        }
    }
    
    WeightVector forward(const std::vector<float>& input) {
        // Accessing weights triggers decompression if needed
        WeightVector output;
        // ... neural network math ...
        return output;
    }
    
private:
    WeightVector weights_;  // Compressed when not in use
};

int main() {
    // Create multiple layers - only active layer stays in RAM
    std::vector<NeuralNetworkLayer> model;
    model.emplace_back(1024, 512);   // Layer 1
    model.emplace_back(512, 256);    // Layer 2
    model.emplace_back(256, 10);     // Layer 3 (output)
    
    // Run inference - layers decompress as needed
    std::vector<float> input(1024, 0.5f);
    auto result = model[0].forward(input);
    // ... continue through layers ...
}
