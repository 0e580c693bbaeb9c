// Compiled by `npm test` (tsc --noEmit): the published types describe the API as documented.
import { Model, OutputBuffer, Prediction, Tensor, Row, isIngotError, isaLevel } from '..'

export async function usage(path: string): Promise<void> {
  const model: Model = await Model.load(path, { threads: 2 })
  const gpu: Model = Model.loadSync(path, { device: 'cuda:0', kernels: 'auto' })
  const placed: [string, 'ingot' | 'candle'] = [gpu.device, gpu.kernels]
  const rows: Row[] = [{ age: 42, color: 'red', rooms: null }]
  const p: Prediction = await model.predict(rows)
  const labels: Array<number | string | null> | undefined = p.labels
  const probabilities: Tensor | undefined = p.probabilities
  const [n, classes]: [number, number] = probabilities ? probabilities.shape : [0, 0]
  const dense = await model.predict({ data: new Float32Array(n * classes), shape: [n, classes] })
  const first: number = dense.scores.data[0]
  const texts = model.predictSync(['a sentence'])
  const embeddings: Tensor = await model.embed(['a sentence'])
  const out = new OutputBuffer()
  const reused: Prediction = model.predictSync(rows, { out })
  const inBuffer: Tensor = await model.embed(['a sentence'], { out })
  const size: number = out.byteLength
  const busy: boolean = out.busy
  const task: 'classifier' | 'regressor' | 'embedding' | 'scores' = model.task
  const version: string = model.metadata.version
  const inputs: string[] = model.signature.inputs.map((i) => `${i.name}: ${i.dtype}`)
  try {
    Model.loadSync(path)
  } catch (e) {
    if (isIngotError(e)) {
      const code: 'ERR_INGOT_FORMAT' | string = e.code
      void code
    }
  }
  void [placed, labels, first, texts, embeddings, reused, inBuffer, size, busy, task, version, inputs, isaLevel()]
}
