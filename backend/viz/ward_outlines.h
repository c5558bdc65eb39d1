// Ward polygons as SVG path data, projected once per layer and shared by every map drawn from it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "backend/data/shapefile_zip.h"

namespace stickyproxy::backend {

class WardOutlines {
 public:
  // The viewBox width used when the caller gives none, or one that is not a positive number.
  static constexpr double kDefaultWidth = 800;

  // Projects every ward of `layer` into SVG path data for a viewBox `width` units wide (height
  // follows the aspect). Geographic bounds (within ±180/±90) use an equirectangular projection
  // with cos(middle latitude) correction, unless the layer's .prj names a projected system
  // (PROJCS/PROJCRS); other bounds are scaled as planar. y grows downwards.
  // Coordinates are rounded to 0.1 unit and repeated points dropped, so path text stays small.
  static WardOutlines project(const ShapefileLayer& layer, double width = kDefaultWidth, int grid_tenths = 1);

  // project() for shapes without a layer: the bounds are those of `shapes`' rings, and
  // `geographic` says whether x/y are longitude/latitude in degrees.
  //
  // Paths are "M x y l dx dy dx dy ... Z" per ring: the first point absolute, the rest as steps
  // from the previous rounded point, which keeps the numbers short and cannot accumulate error
  // because every step is taken between already-rounded points. After rounding, repeated points,
  // points lying exactly on the straight segment between their neighbours, and the closing point
  // are dropped (none of them changes what is drawn); a ring left with fewer than three points
  // has no area and is left out.
  // The drawing is centred horizontally when the aspect cap below narrows it: height is at most
  // kMaxAspect times the width, so a sliver-shaped layer cannot make a page kilometres tall.
  //
  // `grid_tenths` > 1 snaps every point to multiples of that many tenths instead (kDisplayGrid:
  // one unit, about a screen pixel when the map is shown at its natural width), which drops the
  // detail no screen shows: a 400-ward state's outlines shrink several times over. Neighbours
  // still share identical edges, since every point snaps the same way. A shape that would vanish
  // on the coarse grid (smaller than a unit) is drawn on the tenth grid instead, so no ward that
  // has an area disappears from the map.
  static WardOutlines project(const std::vector<WardShape>& shapes, bool geographic,
                              double width = kDefaultWidth, int grid_tenths = 1);

  // The grid maps are drawn on: whole viewBox units.
  static constexpr int kDisplayGrid = 10;

  static constexpr double kMaxAspect = 4;

  // One per shape record.
  size_t size() const { return paths_.size(); }
  // "M..Z" for every ring of `shape` (draw with fill-rule evenodd so holes stay open); empty for
  // a null shape, one whose rings all collapsed, or an index past size().
  const std::string& path(size_t shape) const;
  // The viewBox is (0, 0, width(), height()); height() is at least 1.
  double width() const { return width_; }
  double height() const { return height_; }
  // Bytes of path data over all shapes.
  size_t pathBytes() const;

 private:
  std::vector<std::string> paths_;
  double width_ = kDefaultWidth;
  double height_ = kDefaultWidth;
};

}  // namespace stickyproxy::backend
