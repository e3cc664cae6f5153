// Gradient clipping and AdamW for every parameter tensor in two launches (bert-tasks,
// src/train/adamw_cuda.rs): one that sums the squares of all gradients into one double, and one
// that updates parameters and both moments in place, reading the clip factor from that sum on
// the device (no host round trip). Same arithmetic as the CPU update in src/train/optim.rs.
//
// The tensors are described by a table of slots. Blocks are dealt to tensors in proportion to
// their size: slot t owns blocks [first_block[t], first_block[t + 1]), found by binary search.

struct Slot {
    float* p;
    float* m;
    float* v;
    const float* g;
    unsigned long long n;
    unsigned long long first_block;
    float lr;
    float keep;  // 1 - lr * weight_decay (decoupled decay), 1 for biases and LayerNorm
};

__device__ int owner(const Slot* slots, int count) {
    int lo = 0, hi = count - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (slots[mid].first_block <= blockIdx.x) lo = mid; else hi = mid - 1;
    }
    return lo;
}

__device__ unsigned long long blocks_of(const Slot* slots, int count, int t, unsigned long long total) {
    return (t + 1 < count ? slots[t + 1].first_block : total) - slots[t].first_block;
}

extern "C" __global__ void sum_squares(const Slot* slots, int count, double* out) {
    int t = owner(slots, count);
    const Slot s = slots[t];
    unsigned long long stride = blocks_of(slots, count, t, gridDim.x) * blockDim.x;
    double acc = 0.0;
    for (unsigned long long i = (blockIdx.x - s.first_block) * blockDim.x + threadIdx.x; i < s.n; i += stride) {
        double x = s.g[i];
        acc += x * x;
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
    __shared__ double warps[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warps[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < (int)(blockDim.x >> 5) ? warps[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
        if (lane == 0 && acc != 0.0) atomicAdd(out, acc);
    }
}

// max_norm < 0: no clipping.
extern "C" __global__ void adamw(const Slot* slots, int count, const double* sum_sq, double max_norm,
                                 float b1, float b2, float bc1, float bc2, float eps) {
    int t = owner(slots, count);
    const Slot s = slots[t];
    double norm = sqrt(*sum_sq);
    float scale = (max_norm >= 0.0 && norm > max_norm) ? (float)(max_norm / (norm + 1e-6)) : 1.0f;
    unsigned long long stride = blocks_of(slots, count, t, gridDim.x) * blockDim.x;
    for (unsigned long long i = (blockIdx.x - s.first_block) * blockDim.x + threadIdx.x; i < s.n; i += stride) {
        float g = s.g[i] * scale;
        float m = s.m[i] * b1 + g * (1.0f - b1);
        float v = s.v[i] * b2 + g * g * (1.0f - b2);
        s.m[i] = m;
        s.v[i] = v;
        float update = (m / bc1) / (sqrtf(v / bc2) + eps);
        s.p[i] = s.p[i] * s.keep - update * s.lr;
    }
}
