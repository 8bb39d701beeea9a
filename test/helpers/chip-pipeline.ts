/**
 * The pipeline the chipping tests share: demo scenes -> rgb -> xView COCO shards -> SAHI-style
 * chips of each RGB scene with its shard. `more` appends stages (YAML under `stages:`).
 */
export function chipPipeline(name: string, more = ''): string {
  return `version: 1
name: ${name}
output: runs
inputs:
  scenes: data/*.tif
  xview: data/labels/xview_demo.geojson
stages:
  rgb:
    job: rgb
    foreach: scenes
  labels:
    job: labels-xview
    needs: [rgb]
    params: { labels: xview, images: rgb }
  chips:
    job: chip
    foreach: rgb
    needs: [labels]
    params: { image: rgb, coco: labels, size: 128, overlap: 0.2, ignoreNegatives: true }
${more}`;
}
