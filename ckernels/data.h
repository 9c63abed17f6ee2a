/* Data movement for any element size: strided copies (Transpose, Slice,
 * Split, Pad), Concat and Gather. */

/* out (dense, `shape`) [i] = in[sum idx[d] * strides[d]], offsets in elements. */
RF_KERNEL void rf_strided_copy(void *out, const void *in, size_t elem, int rank, const ptrdiff_t *shape,
                               const ptrdiff_t *strides) {
  ptrdiff_t idx[RF_MAX_RANK] = {0}, rows = 1, r, inner = shape[rank - 1], i, step = strides[rank - 1];
  unsigned char *o = (unsigned char *)out;
  const unsigned char *src = (const unsigned char *)in;
  int d;
  for (d = 0; d < rank - 1; ++d) rows *= shape[d];
  for (r = 0; r < rows; ++r) {
    ptrdiff_t off = 0;
    for (d = 0; d < rank - 1; ++d) off += idx[d] * strides[d];
    if (step == 1) {
      memcpy(o, src + off * (ptrdiff_t)elem, elem * (size_t)inner);
    } else if (elem == 4) {
      const float *s = (const float *)(const void *)(src + off * 4);
      float *t = (float *)(void *)o;
      for (i = 0; i < inner; ++i) t[i] = s[i * step];
    } else {
      for (i = 0; i < inner; ++i) memcpy(o + i * (ptrdiff_t)elem, src + (off + i * step) * (ptrdiff_t)elem, elem);
    }
    o += elem * (size_t)inner;
    for (d = rank - 2; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

/* Copies `blocks` blocks of `block` bytes from in (stride in_stride) to out
 * (stride out_stride): one Concat input or Split output. */
RF_KERNEL void rf_copy_blocks(void *out, ptrdiff_t out_stride, const void *in, ptrdiff_t in_stride,
                              ptrdiff_t blocks, size_t block) {
  ptrdiff_t b;
  if (out == in && out_stride == in_stride) return;
  for (b = 0; b < blocks; ++b)
    memmove((unsigned char *)out + b * out_stride, (const unsigned char *)in + b * in_stride, block);
}

/* Constant padding: fills out with `value` (elem 4: float bits) and copies
 * the input into the window starting at `offset` of the output. */
RF_KERNEL void rf_pad_constant(float *out, ptrdiff_t n, float value, const float *in, int rank,
                               const ptrdiff_t *in_shape, const ptrdiff_t *out_strides, ptrdiff_t offset) {
  ptrdiff_t idx[RF_MAX_RANK] = {0}, rows = 1, r, inner = in_shape[rank - 1], i;
  int d;
  for (i = 0; i < n; ++i) out[i] = value;
  for (d = 0; d < rank - 1; ++d) rows *= in_shape[d];
  for (r = 0; r < rows; ++r) {
    ptrdiff_t off = offset;
    for (d = 0; d < rank - 1; ++d) off += idx[d] * out_strides[d];
    memcpy(out + off, in + r * inner, sizeof(float) * (size_t)inner);
    for (d = rank - 2; d >= 0; --d) {
      if (++idx[d] < in_shape[d]) break;
      idx[d] = 0;
    }
  }
}

/* Gather along an axis: in viewed as [outer, axis_len, inner] (bytes per
 * inner block: block), indices int64 (negative counts from the end). */
RF_KERNEL void rf_gather(void *out, const void *in, ptrdiff_t outer, ptrdiff_t axis_len, size_t block,
                         const int64_t *indices, ptrdiff_t n_indices) {
  ptrdiff_t o, i;
  unsigned char *t = (unsigned char *)out;
  const unsigned char *s = (const unsigned char *)in;
  for (o = 0; o < outer; ++o)
    for (i = 0; i < n_indices; ++i) {
      int64_t k = indices[i] < 0 ? indices[i] + axis_len : indices[i];
      if (k < 0) k = 0;
      if (k >= axis_len) k = axis_len - 1;
      memcpy(t, s + ((size_t)o * (size_t)axis_len + (size_t)k) * block, block);
      t += block;
    }
}
